"""Body parsers of the events endpoint: the raw bytes, unparsed, in every media type it takes.

A rejected body must be kept as a dead letter exactly as it arrived, so the view decodes it.
"""

from __future__ import annotations

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
