"""The event envelope (docs/spec/events.md): parse raw input into the native form, or say why not.

Pure Python, no ORM. Both the native and the CloudEvents form come out as the same native dict.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.utils.dateparse import parse_datetime

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
NATIVE_FIELDS = ("event_id", "model_id", "transaction_id", "event_type", "occurred_at", "source", "data")
CLOUDEVENTS_FIELDS = {
    "id": "event_id",
    "type": "event_type",
    "source": "source",
    "time": "occurred_at",
    "subject": "transaction_id",
    "modelid": "model_id",
    "data": "data",
}
LIMITS = {"event_id": 128, "model_id": 64, "transaction_id": 200, "event_type": 200, "source": 200}
REQUIRED = ("event_id", "model_id", "transaction_id", "event_type")


class EnvelopeError(Exception):
    """Why an event is refused: the first problem as ``field`` and ``reason``, and in ``errors`` every
    problem found, as (field, reason) pairs in the order the envelope is checked."""

    def __init__(self, field: str, reason: str, *, errors: Sequence[tuple[str, str]] = ()):
        self.field = field
        self.reason = reason
        self.errors: tuple[tuple[str, str], ...] = tuple(errors) or ((field, reason),)
        super().__init__(f"{field}: {reason}" if field else reason)


class _Problems:
    """Where the checks report what is wrong: the fast path raises at the first problem; once it has
    failed, the same checks run again collecting every problem (``collect=True``)."""

    def __init__(self, *, collect: bool):
        self.collect = collect
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, reason: str) -> None:
        if not self.collect:
            raise EnvelopeError(field, reason)
        if (field, reason) not in self.found:
            self.found.append((field, reason))


@dataclass(frozen=True)
class Envelope:
    """A valid event in native form; ``occurred_at`` is None when the source did not say."""

    event_id: str
    model_id: str
    transaction_id: str
    event_type: str
    occurred_at: datetime | None
    source: str
    data: dict
    # The name the producer used for the model id (``modelid`` in the CloudEvents form), so that
    # an unknown model is reported under the field the producer sent.
    model_field: str = "model_id"

    def as_document(self, *, received_at: datetime) -> dict:
        """The JSON stored in the inbox and seen by ``when``/``set`` expressions."""
        return {
            "event_id": self.event_id,
            "model_id": self.model_id,
            "transaction_id": self.transaction_id,
            "event_type": self.event_type,
            "occurred_at": (self.occurred_at or received_at).isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "data": self.data,
        }


# What "the same body" means for two events with one id (docs/decisions.md, "Reused event ids"):
# the envelope in native form (either form of the event alike), without the time the service
# received it.
BODY_FIELDS = ("model_id", "transaction_id", "event_type", "occurred_at", "source", "data")


def stored_envelope(document: Mapping, *, occurred_at: datetime | None) -> Envelope:
    """An inbox row's envelope as its producer sent it; ``occurred_at`` None when it was not sent (the
    inbox then stores the time it received the event)."""
    return Envelope(
        event_id=document["event_id"],
        model_id=document["model_id"],
        transaction_id=document["transaction_id"],
        event_type=document["event_type"],
        occurred_at=occurred_at,
        source=document.get("source") or "",
        data=document.get("data") or {},
    )


def body_differences(envelope: Envelope, other: Envelope) -> list[str]:
    """The fields in which two events differ: none when they are the same event sent twice.

    Times are compared as instants (``10:00Z`` is ``11:00+01:00``); ``data`` as JSON values, whatever
    the order of keys and however a number is written (``1``, ``1.0`` and ``1e0`` are one number).
    """
    differences = []
    for name in BODY_FIELDS:
        mine, theirs = getattr(envelope, name), getattr(other, name)
        if name == "data":
            mine, theirs = _canonical_json(mine), _canonical_json(theirs)
        if mine != theirs:
            differences.append(name)
    return differences


def _canonical_json(value: Any) -> str:
    return json.dumps(_integral_numbers(value), sort_keys=True, ensure_ascii=False)


def _integral_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_numbers(item) for item in value]
    return value


# Text a JSON parser accepts but the inbox cannot store: PostgreSQL refuses NUL in text and jsonb,
# and a lone surrogate cannot be encoded as UTF-8 at all.
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_values(value: dict, problems: _Problems) -> None:
    """Report nesting beyond the limit and values that could not be stored as given.

    One walk over the whole value, without recursion (a deep value must not exhaust the stack);
    a bad value is reported under the top-level field it sits in.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, field = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                problems.add("", f"nested deeper than {MAX_DEPTH} levels")
                continue
            # Pushed in reverse so that the first bad field in document order is the one reported.
            if isinstance(item, dict):
                for key, child in reversed(item.items()):
                    _check_text(key, field, problems)
                    stack.append((child, depth + 1, field or key))
            else:
                stack.extend((child, depth + 1, field) for child in reversed(item))
        elif isinstance(item, str):
            _check_text(item, field, problems)
        elif isinstance(item, float) and not math.isfinite(item):
            problems.add(field, "a number is out of range")


def _check_text(text: str, field: str, problems: _Problems) -> None:
    match = _UNSTORABLE_TEXT.search(text)
    if match is None:
        return
    if match.group() == "\x00":
        problems.add(field, "text contains a NUL character")
    else:
        problems.add(field, "text contains a lone surrogate, which is not valid Unicode")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def decode(raw: bytes) -> Any:
    """Bytes from a file line or a Kinesis record -> a JSON value, within the size limit."""
    if len(raw) > MAX_BYTES:
        raise EnvelopeError("", f"larger than {MAX_BYTES} bytes")
    try:
        # orjson reads plain UTF-8 JSON several times faster. Whatever it refuses (a byte order
        # mark, an integer beyond 64 bits, bad input) is read again the standard way, which
        # accepts or words the problem as before.
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # Decoded here rather than by json.loads, which would also guess UTF-16 and UTF-32;
        # a leading byte order mark is tolerated.
        return json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise EnvelopeError("", "not UTF-8") from None
    except RecursionError:
        raise EnvelopeError("", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise EnvelopeError("", f"not JSON: {exc}") from None


def parse(value: Any, *, default_event_id: str | None = None, size: int | None = None) -> Envelope:
    """Validate a decoded JSON value as an envelope.

    ``default_event_id`` stands in for a missing ``event_id`` (Kinesis records); ``size`` is the
    raw size when the caller knows it, otherwise the value is re-serialised to measure it. An invalid
    envelope raises ``EnvelopeError`` with every problem found: the checks stop at the first one
    (the way of every valid event), and only then run again to collect them all.
    """
    try:
        return _checked(value, default_event_id, size, _Problems(collect=False))
    except EnvelopeError as first:
        problems = _Problems(collect=True)
        _checked(value, default_event_id, size, problems)
        raise EnvelopeError(first.field, first.reason, errors=problems.found) from None


def sent_event_id(value: Any, *, default_event_id: str | None = None) -> str | None:
    """The event id a producer sent with a value that may not be a valid envelope, to echo it back."""
    if not isinstance(value, Mapping):
        return default_event_id
    sent = value.get("id" if "specversion" in value else "event_id")
    if sent is None:
        return default_event_id
    return sent if isinstance(sent, str) else None


def _checked(value: Any, default_event_id: str | None, size: int | None, problems: _Problems) -> Envelope | None:
    if not isinstance(value, dict):
        problems.add("", "an event must be a JSON object")
        return None
    _check_values(value, problems)
    if size is None:
        try:
            size = len(json.dumps(value, ensure_ascii=False).encode())
        except (ValueError, RecursionError):  # only when collecting: a value the walk above reported
            size = 0
    if size > MAX_BYTES:
        problems.add("", f"larger than {MAX_BYTES} bytes")
    if "specversion" in value:
        fields = {native: value[ce] for ce, native in CLOUDEVENTS_FIELDS.items() if ce in value}
        names = {native: ce for ce, native in CLOUDEVENTS_FIELDS.items()}
    else:
        fields = {name: value[name] for name in NATIVE_FIELDS if name in value}
        names = {name: name for name in NATIVE_FIELDS}
    if fields.get("event_id") is None and default_event_id is not None:
        fields["event_id"] = default_event_id
    for name in REQUIRED:
        if fields.get(name) is None:
            problems.add(names[name], "required")
    for name, limit in LIMITS.items():
        field_value = fields.get(name)
        if field_value is None:
            continue
        if not isinstance(field_value, str):
            problems.add(names[name], "must be a string")
            continue
        minimum = 0 if name == "source" else 1
        if not minimum <= len(field_value) <= limit:
            problems.add(names[name], f"must be {minimum} to {limit} characters")
    occurred_at = _occurred_at(fields.get("occurred_at"), names["occurred_at"], problems)
    data = fields.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        problems.add(names["data"], "must be a JSON object")
    if problems.found:
        return None
    return Envelope(
        event_id=fields["event_id"],
        model_id=fields["model_id"],
        transaction_id=fields["transaction_id"],
        event_type=fields["event_type"],
        occurred_at=occurred_at,
        source=fields.get("source") or "",
        data=data,
        model_field=names["model_id"],
    )


def _occurred_at(raw_time: Any, name: str, problems: _Problems) -> datetime | None:
    if raw_time is None:
        return None
    try:
        occurred_at = parse_datetime(raw_time) if isinstance(raw_time, str) else None
    except ValueError:  # well formed but not a real time, such as February 30
        occurred_at = None
    if occurred_at is None or occurred_at.tzinfo is None:
        problems.add(name, "must be an RFC 3339 time with a UTC offset")
        return None
    try:
        # Stored in UTC: a time that falls outside the years 1 to 9999 once converted (such as
        # 0001-01-01T00:00:00+01:00) could be written but never read back.
        occurred_at.astimezone(UTC)
    except OverflowError:
        problems.add(name, "must fall within the years 1 to 9999 in UTC")
        return None
    return occurred_at
