"""The event envelope (docs/spec/events.md): parse raw input into the native form, or say why not.

Pure Python, no ORM. Both the native and the CloudEvents form come out as the same native dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
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


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode(raw: bytes) -> Any:
    """Bytes from a file line or a Kinesis record -> a JSON value, within the size limit."""
    if len(raw) > MAX_BYTES:
        raise EnvelopeError("", f"larger than {MAX_BYTES} bytes")
    try:
        return json.loads(raw)
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
    if _depth_exceeds(value, MAX_DEPTH):
        raise EnvelopeError("", f"nested deeper than {MAX_DEPTH} levels")
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
        occurred_at = parse_datetime(raw_time) if isinstance(raw_time, str) else None
        if occurred_at is None or occurred_at.tzinfo is None:
            raise EnvelopeError(names["occurred_at"], "must be an RFC 3339 time with a UTC offset")
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
    )
