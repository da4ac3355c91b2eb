"""Request body parsers for the REST API.

DRF's own JSON parser reads a body of any size and lets a ``RecursionError`` from very deeply
nested JSON escape as a 500. These parsers read at most ``STATUSTRACKER_MAX_REQUEST_BYTES`` and
answer bad bodies with a 400 that says what is wrong, text the database cannot store included (a
NUL character, which PostgreSQL refuses in text and JSON, or a lone surrogate, which is not
Unicode): refused here once, it can reach no view. The events endpoint takes the raw bytes
instead, because a rejected body must be kept as a dead letter exactly as it arrived.
"""

from __future__ import annotations

import io
import re
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


UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def refuse_unstorable_text(value) -> None:
    """Raise ``ParseError`` when any string or object key in ``value`` cannot be stored.

    Walks the value without recursion: the JSON parser has already bounded its depth.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and UNSTORABLE_TEXT.search(item):
            raise ParseError(
                "JSON parse error - text holds a NUL character or a lone surrogate, which cannot be stored."
            )


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size limit, and a 400, not a 500, for JSON nested too deeply or
    holding text that cannot be stored."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = max_request_bytes()
        body = read_body(stream, limit=limit, keep=0)
        if body.truncated:
            raise RequestTooLarge(f"Request body larger than {limit} bytes.")
        try:
            value = super().parse(io.BytesIO(body.data), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        refuse_unstorable_text(value)
        return value
