"""Finding instances in the admin: by version, state (by its label), delayed, and a search by
transaction id or by a value of the context.

The context search asks for containment (``context @> {"email": "…"}``), which the GIN index
``instance_context`` (migration 0008, PostgreSQL only) answers; on SQLite the same search reads the
field (slower, and fine for a local database). Only fields the models name are searched: their
display fields and the fields their transitions ``set``.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from models_registry.models import ModelVersion, StatusModel
from models_registry.selectors import version_definition
from tracking.models import InstanceStatus

_FIELD_TERM = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.+)$")


def _documents():
    for version_id in ModelVersion.objects.values_list("pk", flat=True):
        yield version_id, version_definition(version_id=version_id).document


def searchable_fields() -> set[str]:
    """Context fields any version of any model shows or sets."""
    fields: set[str] = set()
    for _, document in _documents():
        fields.update(entry["field"] for entry in document.get("display", []))
        for transition in document.get("transitions", []):
            fields.update(transition.get("set", {}))
    return fields


def _has_value(field: str, value: str) -> Q:
    values: list = [value]
    if re.fullmatch(r"-?\d+", value):
        values.append(int(value))
    if connection.vendor == "postgresql":
        return _any(Q(context__contains={field: v}) for v in values)
    return _any(Q(**{f"context__{field}": v}) for v in values)


def _any(conditions) -> Q:
    combined = Q(pk__in=[])
    for condition in conditions:
        combined |= condition
    return combined


def instance_search(term: str) -> Q:
    """``field=value``: that context field has that value; anything else: the transaction id, or
    any searchable context field, equals the term."""
    match = _FIELD_TERM.match(term)
    if match:
        return _has_value(match["field"], match["value"].strip())
    # The model ids lead the unique index on (model, transaction_id), so this is an index lookup.
    by_transaction = Q(model_id__in=list(StatusModel.objects.values_list("pk", flat=True)), transaction_id=term)
    return by_transaction | _any(_has_value(field, term) for field in sorted(searchable_fields()))


class VersionListFilter(admin.SimpleListFilter):
    title = "version"
    parameter_name = "version__id__exact"

    def lookups(self, request, model_admin):
        versions = ModelVersion.objects.select_related("model").order_by("model__key", "number")
        model_id = request.GET.get("model__id__exact")
        if model_id:
            versions = versions.filter(model_id=model_id)
        return [(str(v.pk), f"{v.model.key} v{v.number}") for v in versions]

    def queryset(self, request, queryset):
        return queryset.filter(version_id=self.value()) if self.value() else queryset


class StateListFilter(admin.SimpleListFilter):
    """States by their labels; with a model chosen, only its states."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        labels: dict[str, str] = {}
        model_id = request.GET.get("model__id__exact")
        versions = ModelVersion.objects.order_by("-number")
        if model_id:
            versions = versions.filter(model_id=model_id)
        for version_id in versions.values_list("pk", flat=True):
            for state in version_definition(version_id=version_id).document["states"]:
                labels.setdefault(state["key"], state["label"])
        return [(key, f"{label} ({key})" if label != key else key) for key, label in labels.items()]

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


def delayed_condition(now=None) -> Q:
    """Instances still open that have been in their state longer than its ``expected_within``."""
    now = now or timezone.now()
    overdue = Q(pk__in=[])
    for version_id in ModelVersion.objects.values_list("pk", flat=True):
        for key, limit in version_definition(version_id=version_id).expected_within.items():
            overdue |= Q(version_id=version_id, state=key, state_entered_at__lt=now - limit)
    return overdue & Q(status__in=[InstanceStatus.ACTIVE, InstanceStatus.IN_EXCEPTION])


class DelayedListFilter(admin.SimpleListFilter):
    title = "delayed"
    parameter_name = "delayed"

    def lookups(self, request, model_admin):
        return [("yes", "Delayed (past expected within)"), ("no", "Not delayed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(delayed_condition())
        if self.value() == "no":
            return queryset.exclude(delayed_condition())
        return queryset
