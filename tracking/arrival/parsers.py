"""How the events endpoint reads a request: body parsers that keep the raw bytes, unparsed, in every
media type it takes, and CloudEvents' HTTP binary content mode.

A rejected body must be kept as a dead letter exactly as it arrived, so the view decodes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import unquote

from rest_framework import parsers

from api_access.parsers import RawBody, max_request_bytes, read_body
from tracking.arrival.envelope import MAX_BYTES


class EventsParser(parsers.BaseParser):
    """The events endpoint's body, unparsed: the view decodes it and dead-letters what it rejects."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> RawBody:
        # Past the request limit the body is not read further; its head (one byte more than an
        # event may have, so that it is still rejected as too large) becomes the dead letter.
        return read_body(stream, limit=max_request_bytes(), keep=MAX_BYTES + 1)


class CloudEventParser(EventsParser):
    """A CloudEvents 1.0 event in structured mode."""

    media_type = "application/cloudevents+json"


class CloudEventBatchParser(EventsParser):
    """CloudEvents 1.0 batched mode: a JSON array of events."""

    media_type = "application/cloudevents-batch+json"


CE_HEADER_PREFIX = "ce-"
# Media types of a binary-mode event's data that are read as JSON; without a Content-Type, data is
# JSON too (the CloudEvents SDKs send none for a dict).
_JSON_TYPES = ("application/json", "text/json")


def is_binary_mode(*, headers: Mapping[str, str], content_type: str) -> bool:
    """CloudEvents' HTTP binary content mode: the attributes travel as ``ce-*`` headers, the body is
    the event's data. A structured or batched CloudEvent (``application/cloudevents…``) is read from its
    body whatever headers it carries, as the HTTP binding says."""
    return "ce-specversion" in headers and not content_type.lower().startswith("application/cloudevents")


def binary_mode_event(*, headers: Mapping[str, str], content_type: str, body: bytes) -> dict:
    """The event of a binary-mode request in the structured form, which the envelope parser reads.

    Header values are percent-decoded (UTF-8), as the HTTP binding asks producers to encode them.
    A body that is not JSON becomes ``data`` as text, which the envelope refuses (it must be an
    object), so the dead letter keeps what was sent.
    """
    event: dict = {}
    for name, value in headers.items():
        if name.lower().startswith(CE_HEADER_PREFIX):
            event[name[len(CE_HEADER_PREFIX) :].lower()] = unquote(_header_text(value))
    if not body:
        return event
    text = body.decode("utf-8-sig", errors="replace")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type or media_type in _JSON_TYPES or media_type.endswith("+json"):
        try:
            event["data"] = json.loads(text)
        except (ValueError, RecursionError):
            event["data"] = text
    else:
        event["data"] = text
    return event


def _header_text(value: str) -> str:
    """A header as its producer wrote it: WSGI hands header bytes over as Latin-1, so UTF-8 sent
    without percent-encoding is read back as UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
