"""REST API for events and instances, the health check, and the API's error format.

One view per operation; views parse and check input, call services and selectors, and shape the
output. Authentication and scopes: ``tracking.authentication`` and ``tracking.permissions``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from kombu import Connection
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from tracking.links import instance_tracking_url
from tracking.models import InstanceStatus, SourceKind
from tracking.pagination import ApiPagination
from tracking.parsers import CloudEventBatchParser, CloudEventParser, EventsParser, RawBody, max_request_bytes
from tracking.permissions import CanProduceEvents, CanRead
from tracking.progress import CURRENT, REACHED, UPCOMING
from tracking.selectors import InstanceDetail, instance_detail, instance_list, instance_state_label
from tracking.services import ACCEPTED, DUPLICATE, REJECTED, RawEvent, events_ingest

logger = logging.getLogger(__name__)

HEALTH_CHECK_TIMEOUT_SECONDS = 2

# Named choice sets, so that the OpenAPI schema gives each its own enum (SPECTACULAR_SETTINGS).
EVENT_RESULT_CHOICES = [ACCEPTED, DUPLICATE, REJECTED]
MILESTONE_STATUS_CHOICES = [REACHED, CURRENT, UPCOMING]
# Waiting instances are never shown.
INSTANCE_STATUS_CHOICES = [c for c in InstanceStatus.choices if c[0] != InstanceStatus.WAITING]
HEALTH_STATUS_CHOICES = ["ok", "unavailable"]


def exception_handler(exc, context):
    """DRF's handler, with validation errors as ``{"detail": ..., "errors": {field: [messages]}}``.

    Every error of the API then has a ``detail`` a person can read; field errors sit under
    ``errors`` with the field's path as the key.
    """
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        if isinstance(response.data, dict) and "detail" not in response.data:
            response.data = {"detail": "Invalid input.", "errors": response.data}
        elif isinstance(response.data, list):
            response.data = {"detail": " ".join(str(message) for message in response.data)}
    return response


# --- Events ------------------------------------------------------------------------------------


class _EnvelopeSerializer(serializers.Serializer):
    """The native envelope (docs/spec/events.md), for the schema; validation is tracking.envelope's."""

    event_id = serializers.CharField(max_length=128, help_text="Idempotency key.")
    model_id = serializers.CharField(max_length=64)
    transaction_id = serializers.CharField(max_length=200)
    event_type = serializers.CharField(max_length=200)
    occurred_at = serializers.DateTimeField(required=False, help_text="RFC 3339 with a UTC offset.")
    source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    data = serializers.DictField(required=False)

    class Meta:
        ref_name = "EventEnvelope"


class _EventBatchSerializer(serializers.Serializer):
    events = _EnvelopeSerializer(many=True, help_text="At most 500 envelopes (native or CloudEvents form).")

    class Meta:
        ref_name = "EventBatch"


class _CloudEventSerializer(serializers.Serializer):
    specversion = serializers.CharField(default="1.0")
    id = serializers.CharField(max_length=128)
    type = serializers.CharField(max_length=200)
    source = serializers.CharField(max_length=200, required=False)
    subject = serializers.CharField(max_length=200, help_text="The transaction id.")
    modelid = serializers.CharField(max_length=64, help_text="The model id (extension attribute).")
    time = serializers.DateTimeField(required=False)
    data = serializers.DictField(required=False)

    class Meta:
        ref_name = "CloudEvent"


class _EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request.")
    status = serializers.ChoiceField(choices=EVENT_RESULT_CHOICES)
    event_id = serializers.CharField(allow_null=True)
    field = serializers.CharField(required=False, help_text="Rejected: the field at fault ('' for the whole).")
    reason = serializers.CharField(required=False, help_text="Rejected: why.")

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
        rejected = serializers.IntegerField()
        results = _EventResultSerializer(many=True)

        class Meta:
            ref_name = "EventIngestResult"

    class ErrorSerializer(serializers.Serializer):
        detail = serializers.CharField()
        field = serializers.CharField(help_text="The field at fault; '' when it is the request as a whole.")
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
            "CloudEvents form. Each event is stored once (a repeated `event_id` is a `duplicate`) and applied "
            "asynchronously. An invalid event is `rejected` (and kept as a dead letter) without affecting the "
            "others; a request that is a single invalid event, or that cannot be read as events at all, is a 400. "
            "Needs the producer scope."
        ),
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="EventsRequest",
                serializers=[_EnvelopeSerializer, _EventBatchSerializer, _EnvelopeSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            ),
            "application/cloudevents+json": _CloudEventSerializer,
            "application/cloudevents-batch+json": _CloudEventSerializer(many=True),
        },
        responses={
            202: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not events, or a single event that was rejected."),
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
        body = request.data if isinstance(request.data, RawBody) else RawBody(b"")
        request_id = uuid.uuid4().hex[:16]
        source_ref = f"api/{request.auth.prefix}/{request_id}"
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

        rows = []
        for index, result in enumerate(results):
            row = {"index": index, "status": result.status, "event_id": result.event_id}
            if result.status == REJECTED:
                row.update(field=result.field, reason=result.reason)
            rows.append(row)
        counts = {name: sum(1 for r in results if r.status == name) for name in (ACCEPTED, DUPLICATE, REJECTED)}
        if not is_batch and results[0].status == REJECTED:
            rejected = results[0]
            reason = f"request body larger than {max_request_bytes()} bytes" if body.truncated else rejected.reason
            detail = f"Event rejected: {rejected.field}: {reason}" if rejected.field else f"Event rejected: {reason}"
            return Response(
                self.ErrorSerializer(
                    {
                        "detail": detail,
                        "field": rejected.field,
                        "reason": reason,
                        "request_id": request_id,
                        "results": rows,
                    }
                ).data,
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            self.OutputSerializer({"request_id": request_id, **counts, "results": rows}).data,
            status=status.HTTP_202_ACCEPTED,
        )


# --- Instances ---------------------------------------------------------------------------------


class _MilestoneSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    states = serializers.ListField(child=serializers.CharField(), help_text="Internal states it groups.")
    status = serializers.ChoiceField(choices=MILESTONE_STATUS_CHOICES)
    reached_at = serializers.DateTimeField(allow_null=True, help_text="When the instance first got there.")

    class Meta:
        ref_name = "Milestone"


class _HistoryEntrySerializer(serializers.Serializer):
    from_state = serializers.CharField(allow_blank=True, help_text="Empty for the creation.")
    to_state = serializers.CharField()
    to_label = serializers.CharField()
    event_id = serializers.CharField(allow_null=True)
    event_type = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField(help_text="When the source system saw the event.")
    recorded_at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True, help_text="User, for manual transitions.")
    note = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "HistoryEntry"


class InstanceDetailApi(APIView):
    """Readers see one instance: where it is, how it got there, and what comes next."""

    permission_classes = [CanRead]

    class OutputSerializer(serializers.Serializer):
        model_id = serializers.CharField()
        transaction_id = serializers.CharField()
        version = serializers.IntegerField(help_text="The model version the instance is pinned to.")
        state = serializers.CharField()
        state_label = serializers.CharField()
        state_kind = serializers.ChoiceField(choices=["step", "success", "failure", "exception"])
        status = serializers.ChoiceField(choices=INSTANCE_STATUS_CHOICES)
        milestones = _MilestoneSerializer(many=True)
        context = serializers.DictField()
        history = _HistoryEntrySerializer(many=True)
        parked_events = serializers.IntegerField(help_text="Events waiting for the instance to catch up.")
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        updated_at = serializers.DateTimeField()
        tracking_url = serializers.URLField(
            help_text="The customer's page for this instance: a signed link to hand to the customer. It stays the "
            "same until an operator revokes it (then a new one is returned); it may expire "
            "(STATUSTRACKER_TRACKING_LINK_MAX_AGE)."
        )

        class Meta:
            ref_name = "InstanceDetail"

    @staticmethod
    def _output(detail: InstanceDetail) -> dict:
        instance = detail.instance
        return {
            "model_id": instance.model.key,
            "transaction_id": instance.transaction_id,
            "version": instance.version.number,
            "state": instance.state,
            "state_label": detail.state_label(instance.state),
            "state_kind": detail.definition.kinds.get(instance.state, "step"),
            "status": instance.status,
            "milestones": detail.milestones,
            "context": instance.context,
            "history": [
                {
                    "from_state": record.from_state,
                    "to_state": record.to_state,
                    "to_label": detail.state_label(record.to_state),
                    "event_id": record.event.event_id if record.event else None,
                    "event_type": record.event.event_type if record.event else None,
                    "occurred_at": record.occurred_at,
                    "recorded_at": record.recorded_at,
                    "actor": record.actor.username if record.actor else None,
                    "note": record.note,
                }
                for record in detail.history
            ],
            "parked_events": detail.parked_events,
            "created_at": instance.created_at,
            "started_at": instance.started_at,
            "updated_at": instance.updated_at,
        }

    @extend_schema(
        operation_id="instances_retrieve",
        tags=["instances"],
        summary="One instance",
        description=(
            "State (with its customer-facing label), outcome status, milestones (reached, current, upcoming, "
            "with the time each was first reached), context, history and the number of parked events. "
            "An instance that no event has started yet does not exist here (404). Needs the reader scope."
        ),
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No started instance of this model and transaction."),
        },
    )
    def get(self, request, model_id: str, transaction_id: str):
        detail = instance_detail(model_key=model_id, transaction_id=transaction_id)
        if detail is None:
            raise NotFound(f"No instance of model {model_id!r} for transaction {transaction_id!r}.")
        output = {
            **self._output(detail),
            "tracking_url": instance_tracking_url(instance=detail.instance, request=request),
        }
        return Response(self.OutputSerializer(output).data)


class InstanceListApi(APIView):
    """Readers list instances, filtered; ``updated_since`` lets a client poll for changes."""

    permission_classes = [CanRead]
    pagination_class = ApiPagination

    class FilterSerializer(serializers.Serializer):
        model_id = serializers.CharField(required=False, max_length=64)
        state = serializers.CharField(required=False, max_length=64)
        status = serializers.ChoiceField(required=False, choices=INSTANCE_STATUS_CHOICES)
        updated_since = serializers.DateTimeField(
            required=False, help_text="Only instances changed at or after this time (RFC 3339; encode '+' as %2B)."
        )

        class Meta:
            ref_name = "InstanceFilter"

    class OutputSerializer(serializers.Serializer):
        model_id = serializers.CharField(source="model.key")
        transaction_id = serializers.CharField()
        version = serializers.IntegerField(source="version.number")
        state = serializers.CharField()
        state_label = serializers.SerializerMethodField()
        status = serializers.ChoiceField(choices=INSTANCE_STATUS_CHOICES)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

        class Meta:
            ref_name = "InstanceSummary"

        def get_state_label(self, instance) -> str:
            return instance_state_label(instance=instance)

    @extend_schema(
        operation_id="instances_list",
        tags=["instances"],
        summary="List instances",
        description="Started instances, oldest change first, filtered. Needs the reader scope.",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer(many=True),
            400: OpenApiResponse(description="A filter is invalid."),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        instances = instance_list(
            model_key=filters.validated_data.get("model_id"),
            state=filters.validated_data.get("state"),
            status=filters.validated_data.get("status"),
            updated_since=filters.validated_data.get("updated_since"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(instances, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


# --- Health ------------------------------------------------------------------------------------


def _database_check() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _broker_check() -> str:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=HEALTH_CHECK_TIMEOUT_SECONDS
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=HEALTH_CHECK_TIMEOUT_SECONDS)
        if broker.transport_cls == "filesystem":
            # The filesystem transport "connects" to anything; its folders are what must work.
            for key in ("data_folder_in", "data_folder_out"):
                folder = options.get(key)
                if not folder or not os.access(folder, os.W_OK):
                    raise OSError(f"broker folder {folder!r} is missing or not writable")
    return "ok"


class HealthCheckApi(APIView):
    """For load balancers and supervisors: is the database answering, is the broker reachable?"""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=HEALTH_STATUS_CHOICES)
        database = serializers.CharField(help_text="'ok' or the error.")
        broker = serializers.CharField(help_text="'ok' or the error.")

        class Meta:
            ref_name = "Health"

    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        summary="Health check",
        auth=[],
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(OutputSerializer, description="The database or the broker failed."),
        },
    )
    def get(self, request):
        checks = {}
        for name, check in (("database", _database_check), ("broker", _broker_check)):
            try:
                checks[name] = check()
            except Exception as exc:  # a health check reports every failure, whatever it is
                logger.warning("health check: %s failed: %s", name, exc)
                checks[name] = f"error: {type(exc).__name__}: {exc}"
        healthy = all(value == "ok" for value in checks.values())
        return Response(
            self.OutputSerializer({"status": "ok" if healthy else "unavailable", **checks}).data,
            status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )
