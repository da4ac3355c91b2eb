"""Write many rows in one statement, with little Python work per row.

Django's ``bulk_update`` builds a ``CASE WHEN`` expression per field and row, and ``bulk_create``
on PostgreSQL sends one array per column, which psycopg writes element by element in Python
(escaping every JSON document with a regular expression). Ingestion and the workers write
thousands of rows a second, so on PostgreSQL ``bulk_insert`` and ``bulk_set`` send all rows as
**one JSON document**: orjson builds it (``document_json``), and the server unpacks it with
``jsonb_to_recordset``. The statement text then stays the same whatever the number of rows, so
psycopg parses it once; ``text_in`` does the same for look-ups by thousands of keys. Elsewhere
(SQLite) they use a prepared ``executemany``, ``bulk_create`` and ``json_each``.

Values go in as the model attributes hold them: text, numbers, booleans, None, aware datetimes,
and JSON-compatible values for JSON fields.
"""

import datetime
import decimal
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils import timezone


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        # In UTC: RFC 3339 allows offsets up to 23:59, PostgreSQL's timestamptz input only to 15:59.
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} in a bulk statement")


# Datetimes go through ``_json_default`` too (in UTC, see there); keys may be numbers, as json allows.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def document_json(value: Any) -> str:
    """``value`` as JSON text for a ``%s::jsonb`` parameter.

    orjson writes it several times faster than ``json.dumps``, which is what the consumers and
    workers spend much of their time on. It refuses what ``json.dumps`` writes (an integer beyond
    64 bits in a context, say): such a document is written by ``json.dumps`` instead.
    """
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, default=_json_default)


def _record_type(field: models.Field) -> str:
    # Without length: an over-long value is refused by the column itself, as with the ORM.
    return field.db_type(connection).split("(")[0]


def _typed_columns(fields: Sequence[models.Field]) -> str:
    return ", ".join(f"{connection.ops.quote_name(f.column)} {_record_type(f)}" for f in fields)


def bulk_set(
    objects: Sequence[Any],
    field_names: Sequence[str],
    *,
    model: type[models.Model] | None = None,
    batch_size: int = 2000,
) -> None:
    """Write the given fields of these (saved) objects back, a few thousand rows per statement.

    The objects are model instances, or plain rows of ``model`` with the same attributes
    (``pk`` and the fields' attnames).
    """
    if not objects:
        return
    model = model or type(objects[0])
    fields = [model._meta.get_field(name) for name in field_names]
    pk = model._meta.pk
    table = connection.ops.quote_name(model._meta.db_table)
    pk_column = connection.ops.quote_name(pk.column)
    columns = [connection.ops.quote_name(f.column) for f in fields]

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            assignments = ", ".join(f"{column} = v.{column}" for column in columns)
            sql = f"UPDATE {table} AS t SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS v({_typed_columns([pk, *fields])}) WHERE t.{pk_column} = v.{pk_column}"
            keys = [pk.column] + [f.column for f in fields]
            for start in range(0, len(objects), batch_size):
                rows = [
                    dict(zip(keys, [obj.pk] + [getattr(obj, f.attname) for f in fields], strict=True))
                    for obj in objects[start : start + batch_size]
                ]
                cursor.execute(sql, [document_json(rows)])
        else:
            assignments = ", ".join(f"{column} = %s" for column in columns)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s",
                [
                    [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] + [obj.pk]
                    for obj in objects
                ],
            )


def bulk_insert(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts: bool = False,
    returning: str | None = None,
    batch_size: int = 2000,
) -> list:
    """Insert rows given as ``{attname: value}``; fields left out get their default.

    Defaults are the ORM's: ``default`` (a callable is called per row), ``auto_now`` /
    ``auto_now_add`` (the current time), otherwise "" for text fields and NULL for others. With
    ``ignore_conflicts``, rows that break a unique constraint are skipped (``ON CONFLICT DO
    NOTHING``). Rows are inserted in the order given. With ``returning`` (a field name), returns
    that field's value for every row actually inserted (``RETURNING``); otherwise an empty list.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return _insert_portably(model, rows, ignore_conflicts=ignore_conflicts, returning=returning)
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    now = timezone.now()
    # As in Model.save(): auto_now and auto_now_add fields always get the current time.
    automatic = {f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)}
    fixed: dict[str, Any] = {}
    per_row: dict[str, Any] = {}
    for field in fields:
        if field.attname in automatic:
            fixed[field.attname] = now
        elif field.has_default() and callable(field.default):
            per_row[field.attname] = field.default
        else:
            # The default, or what the ORM uses without one: "" for text fields, else NULL.
            fixed[field.attname] = field.get_default()
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({_typed_columns(fields)})) "
        f"WITH ORDINALITY AS v({columns}, bulk_ordinality) ORDER BY bulk_ordinality"
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(model._meta.get_field(returning).column)}"
    returned: list = []
    attnames = [(f.attname, f.column) for f in fields]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            documents = []
            for row in rows[start : start + batch_size]:
                document = {}
                for attname, column in attnames:
                    if attname in row and attname not in automatic:
                        document[column] = row[attname]
                    elif attname in per_row:
                        document[column] = per_row[attname]()
                    else:
                        document[column] = fixed[attname]
                documents.append(document)
            cursor.execute(sql, [document_json(documents)])
            if returning:
                returned.extend(row[0] for row in cursor.fetchall())
    return returned


def _insert_portably(model: type[models.Model], rows, *, ignore_conflicts: bool, returning: str | None) -> list:
    """``bulk_insert`` on other databases (SQLite): the ORM, or a statement a row to learn what was stored."""
    objects = [model(**row) for row in rows]
    if not returning:
        model.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
        return []
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    column = connection.ops.quote_name(model._meta.get_field(returning).column)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}){conflict} RETURNING {column}"
    returned = []
    with connection.cursor() as cursor:
        for obj in objects:
            # pre_save gives auto_now / auto_now_add fields the current time, as Model.save() does.
            cursor.execute(sql, [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields])
            returned.extend(row[0] for row in cursor.fetchall())
    return returned


def text_in(values: Iterable[str]) -> RawSQL:
    """The given strings as a subquery for ``field__in=``: one parameter however many values.

    With a list, Django and psycopg build and parse a statement with one placeholder per value
    (thousands for a Kinesis batch), and psycopg cannot cache it.
    """
    document = document_json(list(values))
    if connection.vendor == "postgresql":
        return RawSQL("SELECT jsonb_array_elements_text(%s::jsonb)", [document])
    return RawSQL("SELECT value FROM json_each(%s)", [document])
