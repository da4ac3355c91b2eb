"""Request body parsers for the REST API.

DRF's own JSON parser reads a body of any size and lets a ``RecursionError`` from very deeply
nested JSON escape as a 500. These parsers read at most ``STATUSTRACKER_MAX_REQUEST_BYTES`` and
answer bad bodies with a 400 that says what is wrong. The events endpoint takes the raw bytes
instead, because a rejected body must be kept as a dead letter exactly as it arrived.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError


class RequestTooLarge(APIException):
    status_code = 400
    default_code = "request_too_large"


def max_request_bytes() -> int:
    return settings.STATUSTRACKER_MAX_REQUEST_BYTES


@dataclass(frozen=True)
class RawBody:
    """The request body as received; when ``truncated``, only its first bytes were read."""

    data: bytes
    truncated: bool = False


def read_body(stream, *, limit: int, keep: int) -> RawBody:
    """Read up to ``limit`` bytes; past it, stop reading and keep only the first ``keep`` bytes."""
    if stream is None:
        return RawBody(b"")
    data = stream.read(limit + 1)
    if len(data) > limit:
        return RawBody(data[:keep], truncated=True)
    return RawBody(data)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size limit and a 400, not a 500, for JSON nested too deeply."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = max_request_bytes()
        body = read_body(stream, limit=limit, keep=0)
        if body.truncated:
            raise RequestTooLarge(f"Request body larger than {limit} bytes.")
        try:
            return super().parse(io.BytesIO(body.data), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class EventsParser(parsers.BaseParser):
    """The events endpoint's body, unparsed: the view decodes it and dead-letters what it rejects."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> RawBody:
        from tracking.envelope import MAX_BYTES

        # Past the request limit the body is not read further; its head (one byte more than an
        # event may have, so that it is still rejected as too large) becomes the dead letter.
        return read_body(stream, limit=max_request_bytes(), keep=MAX_BYTES + 1)


class CloudEventParser(EventsParser):
    """A CloudEvents 1.0 event in structured mode."""

    media_type = "application/cloudevents+json"


class CloudEventBatchParser(EventsParser):
    """CloudEvents 1.0 batched mode: a JSON array of events."""

    media_type = "application/cloudevents-batch+json"
