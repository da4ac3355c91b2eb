"""``POST /api/v1/events``: producers post one envelope or a batch; each event gets its own result.

Views parse and check input, call ``events_ingest`` and shape the output.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.parsers import RawBody, max_request_bytes, read_body
from api_access.permissions import CanProduceEvents
from tracking.arrival.envelope import MAX_BYTES
from tracking.arrival.ingest import CONFLICT, OUTCOMES, REJECTED, RawEvent, events_ingest
from tracking.arrival.parsers import (
    CloudEventBatchParser,
    CloudEventParser,
    EventsParser,
    binary_mode_event,
    is_binary_mode,
)
from tracking.models import SourceKind

# Named choice sets, so that the OpenAPI schema gives each its own enum (SPECTACULAR_SETTINGS).
EVENT_RESULT_CHOICES = list(OUTCOMES)


# The request bodies, as JSON Schema written out by hand: what the endpoint really takes cannot be
# said with serializer fields (tracking.arrival.envelope decides, per event). A single event must be
# a valid envelope, or the request is a 400; a batch holds 1 to 500 values of any kind, and each is
# judged on its own (an invalid one is `rejected` in the results, the request is still a 202).
# Text that PostgreSQL cannot store (a NUL character) is refused anywhere in an event; the schema
# says so for the envelope's own fields.
_NO_NUL = "^[^\\u0000]*$"


def _text(max_length: int, *, min_length: int = 1, nullable: bool = False, description: str = "") -> dict:
    schema = {"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": _NO_NUL}
    if nullable:
        schema["nullable"] = True
    if description:
        schema["description"] = description
    return schema


_TIME = {
    "type": "string",
    "format": "date-time",
    "nullable": True,
    "description": "RFC 3339 with a UTC offset, within the years 1 to 9999 in UTC; default: when received.",
}
_DATA = {
    "type": "object",
    "nullable": True,
    "additionalProperties": {},
    "description": "Free-form JSON object, nested at most 32 levels, no NUL character in any text.",
}
_MAX_EVENTS = settings.STATUSTRACKER_MAX_EVENTS_PER_REQUEST
ENVELOPE_SCHEMA = {
    "title": "EventEnvelope",
    "type": "object",
    "description": "One event in the native form (docs/spec/events.md); the model must be published.",
    "properties": {
        "event_id": _text(128, description="Idempotency key."),
        "model_id": _text(64, description="The id of a published status model."),
        "transaction_id": _text(200),
        "event_type": _text(200),
        "occurred_at": _TIME,
        "source": _text(200, min_length=0, nullable=True),
        "data": _DATA,
    },
    "required": ["event_id", "model_id", "transaction_id", "event_type"],
    # An object with `specversion` is read in the CloudEvents form.
    "not": {"required": ["specversion"]},
}
CLOUD_EVENT_SCHEMA = {
    "title": "CloudEvent",
    "type": "object",
    "description": "One event in the CloudEvents 1.0 structured form; the model must be published.",
    "properties": {
        "specversion": {"nullable": True, "description": "Its presence marks the CloudEvents form (say `1.0`)."},
        "id": _text(128, description="Idempotency key."),
        "type": _text(200),
        "source": _text(200, min_length=0, nullable=True),
        "subject": _text(200, description="The transaction id."),
        "modelid": _text(64, description="The id of a published status model (extension attribute)."),
        "time": _TIME,
        "data": _DATA,
    },
    "required": ["specversion", "id", "type", "subject", "modelid"],
}
_BATCH_ITEMS = {
    "description": "An event envelope, native or CloudEvents; anything else is rejected in the results.",
}
EVENT_LIST_SCHEMA = {
    "title": "EventList",
    "type": "array",
    "minItems": 1,
    "maxItems": _MAX_EVENTS,
    "items": _BATCH_ITEMS,
}
EVENT_BATCH_SCHEMA = {
    "title": "EventBatch",
    "type": "object",
    "properties": {"events": {**EVENT_LIST_SCHEMA, "description": f"1 to {_MAX_EVENTS} events."}},
    "required": ["events"],
    "additionalProperties": False,
}
EVENTS_REQUEST_SCHEMA = {"oneOf": [ENVELOPE_SCHEMA, CLOUD_EVENT_SCHEMA, EVENT_BATCH_SCHEMA, EVENT_LIST_SCHEMA]}


class _FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_blank=True, help_text="The field at fault ('' for the event as a whole).")
    reason = serializers.CharField()

    class Meta:
        ref_name = "EventFieldError"


class _EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request.")
    status = serializers.ChoiceField(choices=EVENT_RESULT_CHOICES)
    event_id = serializers.CharField(
        allow_null=True, help_text="The event's id; for a rejected event, the id it was sent with (null: none)."
    )
    field = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Rejected: the first field at fault ('' for the whole); conflict: `event_id`.",
    )
    reason = serializers.CharField(
        required=False, help_text="Rejected: why; conflict: which fields differ from the event stored with this id."
    )
    errors = _FieldErrorSerializer(many=True, required=False, help_text="Rejected: every problem of the event.")
    warning = serializers.CharField(
        required=False, help_text="Accepted, but it cannot have an effect (say, no transition is for its type)."
    )

    class Meta:
        ref_name = "EventResult"


class _RequestRejected(Exception):
    """The request as a whole cannot be taken; nothing of it was stored."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(reason)


def _request_items(body: RawBody, source_ref: str) -> tuple[list[RawEvent], bool]:
    """Split a request body into the items to ingest; returns (items, whether it was a batch).

    A body that is not a batch is handed on as raw bytes, so that a rejected one is
    dead-lettered byte for byte with the reason the envelope parser gives (not JSON, not an
    object, too deep, too large...).
    """
    if body.truncated:
        return [RawEvent(body.data, f"{source_ref} (first {len(body.data)} bytes kept)")], False
    try:
        # UTF-8 only, as the envelope parser reads it (json.loads would also guess UTF-16/32).
        # NaN and Infinity parse here and are refused per event by the envelope parser.
        value = json.loads(body.data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return [RawEvent(body.data, source_ref)], False
    if isinstance(value, dict) and set(value) == {"events"}:
        events, field = value["events"], "events"
    elif isinstance(value, list):
        events, field = value, ""
    else:
        return [RawEvent(body.data, source_ref)], False
    if not isinstance(events, list):
        raise _RequestRejected(field, "must be a list of event envelopes")
    if not events:
        raise _RequestRejected(field, "must hold at least one event")
    maximum = settings.STATUSTRACKER_MAX_EVENTS_PER_REQUEST
    if len(events) > maximum:
        raise _RequestRejected(field, f"{len(events)} events; at most {maximum} per request")
    return [RawEvent(event, f"{source_ref}#{index}") for index, event in enumerate(events)], True


class EventIngestApi(APIView):
    """Producers post events: one envelope, ``{"events": [...]}`` or a JSON array (CloudEvents batch)."""

    permission_classes = [CanProduceEvents]
    parser_classes = [EventsParser, CloudEventParser, CloudEventBatchParser]

    class OutputSerializer(serializers.Serializer):
        request_id = serializers.CharField(help_text="Names this request in dead letters' source.")
        accepted = serializers.IntegerField()
        duplicate = serializers.IntegerField()
        conflict = serializers.IntegerField(help_text="Events whose id was stored before with a different body.")
        rejected = serializers.IntegerField()
        results = _EventResultSerializer(many=True)

        class Meta:
            ref_name = "EventIngestResult"

    class ErrorSerializer(serializers.Serializer):
        detail = serializers.CharField()
        field = serializers.CharField(
            allow_blank=True, help_text="The field at fault; '' when it is the request as a whole."
        )
        reason = serializers.CharField()
        request_id = serializers.CharField()
        results = _EventResultSerializer(many=True, required=False)

        class Meta:
            ref_name = "EventIngestError"

    @extend_schema(
        operation_id="events_ingest",
        tags=["events"],
        summary="Post events",
        description=(
            'One envelope, `{"events": [...]}` or a JSON array of at most 500 envelopes, in the native or the '
            "CloudEvents form. A CloudEvent may also come in the HTTP binary content mode, as the CloudEvents SDKs "
            "send it by default: its attributes in `ce-*` headers (`ce-specversion`, `ce-id`, `ce-type`, "
            "`ce-subject`, `ce-modelid`, optionally `ce-source` and `ce-time`, percent-encoded) and its data, a JSON "
            "object, as the body (`application/json` or no Content-Type). Each event is stored once and applied "
            "asynchronously: an `event_id` sent again with the same body is a `duplicate`, with another body a "
            "`conflict` (not applied, kept as a dead letter). An accepted event that cannot have an effect (no "
            "transition of the model's latest version is for its type, and it cannot start an instance) carries a "
            "`warning`. An invalid event is `rejected` (and kept as a dead letter) with every problem in `errors`, "
            "without affecting the others; a request that is a single invalid event, or that cannot be read as "
            "events at all, is a 400, and a single event whose id conflicts a 409. Needs the producer scope."
        ),
        request={
            # The media type does not change how the body is read: each takes every form.
            "application/json": EVENTS_REQUEST_SCHEMA,
            "application/cloudevents+json": EVENTS_REQUEST_SCHEMA,
            "application/cloudevents-batch+json": EVENTS_REQUEST_SCHEMA,
        },
        responses={
            202: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not events, or a single event that was rejected."),
            409: OpenApiResponse(
                ErrorSerializer, description="A single event whose event_id was stored before with another body."
            ),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the producer scope."),
        },
        examples=[
            OpenApiExample(
                "One event",
                request_only=True,
                value={
                    "event_id": "billing-7f3a9c",
                    "model_id": "order-fulfilment",
                    "transaction_id": "ORD-100234",
                    "event_type": "payment.captured",
                    "occurred_at": "2026-11-26T10:15:00Z",
                    "source": "billing",
                    "data": {"amount": 129.5, "currency": "EUR"},
                },
            ),
        ],
    )
    def post(self, request):
        request_id = uuid.uuid4().hex[:16]
        source_ref = f"api/{request.auth.prefix}/{request_id}"
        if is_binary_mode(headers=request.headers, content_type=request.content_type):
            # The body is the event's data, in whatever media type: read it here, not by a parser.
            body = read_body(request.stream, limit=max_request_bytes(), keep=MAX_BYTES + 1)
            items, is_batch = _binary_mode_items(request, body, source_ref)
        else:
            body = request.data if isinstance(request.data, RawBody) else RawBody(b"")
            try:
                items, is_batch = _request_items(body, source_ref)
            except _RequestRejected as exc:
                detail = f"{exc.field}: {exc.reason}" if exc.field else f"Request {exc.reason}."
                return Response(
                    self.ErrorSerializer(
                        {"detail": detail, "field": exc.field, "reason": exc.reason, "request_id": request_id}
                    ).data,
                    status=status.HTTP_400_BAD_REQUEST,
                )

        results = events_ingest(items=items, source_kind=SourceKind.API)

        rows = [_result_row(index, result) for index, result in enumerate(results)]
        counts = {name: sum(1 for r in results if r.status == name) for name in OUTCOMES}
        single = results[0] if not is_batch else None
        if single is not None and single.status in (REJECTED, CONFLICT):
            reason = single.reason
            if single.status == REJECTED and body.truncated:
                reason = f"request body larger than {max_request_bytes()} bytes"
            problems = "; ".join(f"{f}: {r}" if f else r for f, r in single.errors[1:])
            detail = f"{single.field}: {reason}" if single.field else reason
            detail = f"{detail}; {problems}" if problems else detail
            prefix = "Event rejected" if single.status == REJECTED else "Event id conflict"
            return Response(
                self.ErrorSerializer(
                    {
                        "detail": f"{prefix}: {detail}",
                        "field": single.field,
                        "reason": reason,
                        "request_id": request_id,
                        "results": rows,
                    }
                ).data,
                status=status.HTTP_400_BAD_REQUEST if single.status == REJECTED else status.HTTP_409_CONFLICT,
            )
        return Response(
            self.OutputSerializer({"request_id": request_id, **counts, "results": rows}).data,
            status=status.HTTP_202_ACCEPTED,
        )


def _result_row(index: int, result) -> dict:
    row = {"index": index, "status": result.status, "event_id": result.event_id}
    if result.status == REJECTED:
        row.update(
            field=result.field,
            reason=result.reason,
            errors=[{"field": field, "reason": reason} for field, reason in result.errors],
        )
    elif result.status == CONFLICT:
        row.update(field=result.field, reason=result.reason)
    elif result.warning:
        row["warning"] = result.warning
    return row


def _binary_mode_items(request, body: RawBody, source_ref: str) -> tuple[list[RawEvent], bool]:
    """The one event of a request in CloudEvents' binary content mode."""
    if body.truncated:
        return [RawEvent(body.data, f"{source_ref} (first {len(body.data)} bytes kept)")], False
    event = binary_mode_event(headers=request.headers, content_type=request.content_type, body=body.data)
    return [RawEvent(event, source_ref)], False
