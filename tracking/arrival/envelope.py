"""The event envelope (docs/spec/events.md): parse raw input into the native form, or say why not.

Pure Python, no ORM. Both the native and the CloudEvents form come out as the same native dict.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


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


# Text a JSON parser accepts but the inbox cannot store: PostgreSQL refuses NUL in text and jsonb,
# and a lone surrogate cannot be encoded as UTF-8 at all.
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_values(value: dict) -> None:
    """Reject nesting beyond the limit and values that could not be stored as given.

    One walk over the whole value, without recursion (a deep value must not exhaust the stack);
    a bad value is reported under the top-level field it sits in.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, field = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise EnvelopeError("", f"nested deeper than {MAX_DEPTH} levels")
            # Pushed in reverse so that the first bad field in document order is the one reported.
            if isinstance(item, dict):
                for key, child in reversed(item.items()):
                    _check_text(key, field)
                    stack.append((child, depth + 1, field or key))
            else:
                stack.extend((child, depth + 1, field) for child in reversed(item))
        elif isinstance(item, str):
            _check_text(item, field)
        elif isinstance(item, float) and not math.isfinite(item):
            raise EnvelopeError(field, "a number is out of range")


def _check_text(text: str, field: str) -> None:
    match = _UNSTORABLE_TEXT.search(text)
    if match is None:
        return
    if match.group() == "\x00":
        raise EnvelopeError(field, "text contains a NUL character")
    raise EnvelopeError(field, "text contains a lone surrogate, which is not valid Unicode")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def decode(raw: bytes) -> Any:
    """Bytes from a file line or a Kinesis record -> a JSON value, within the size limit."""
    if len(raw) > MAX_BYTES:
        raise EnvelopeError("", f"larger than {MAX_BYTES} bytes")
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
    raw size when the caller knows it, otherwise the value is re-serialised to measure it.
    """
    if not isinstance(value, dict):
        raise EnvelopeError("", "an event must be a JSON object")
    _check_values(value)
    if size is None:
        size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_BYTES:
        raise EnvelopeError("", f"larger than {MAX_BYTES} bytes")
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
            raise EnvelopeError(names[name], "required")
    for name, limit in LIMITS.items():
        field_value = fields.get(name)
        if field_value is None:
            continue
        if not isinstance(field_value, str):
            raise EnvelopeError(names[name], "must be a string")
        minimum = 0 if name == "source" else 1
        if not minimum <= len(field_value) <= limit:
            raise EnvelopeError(names[name], f"must be {minimum} to {limit} characters")
    occurred_at = None
    if fields.get("occurred_at") is not None:
        raw_time = fields["occurred_at"]
        try:
            occurred_at = parse_datetime(raw_time) if isinstance(raw_time, str) else None
        except ValueError:  # well formed but not a real time, such as February 30
            occurred_at = None
        if occurred_at is None or occurred_at.tzinfo is None:
            raise EnvelopeError(names["occurred_at"], "must be an RFC 3339 time with a UTC offset")
        try:
            # Stored in UTC: a time that falls outside the years 1 to 9999 once converted (such as
            # 0001-01-01T00:00:00+01:00) could be written but never read back.
            occurred_at.astimezone(UTC)
        except OverflowError:
            raise EnvelopeError(names["occurred_at"], "must fall within the years 1 to 9999 in UTC") from None
    data = fields.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise EnvelopeError(names["data"], "must be a JSON object")
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
