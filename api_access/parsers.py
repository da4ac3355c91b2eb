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
