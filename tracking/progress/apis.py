"""``GET /api/v1/instances``: readers list instances, read one with milestones and history, and list the
events of a transaction with their outcomes.

Transaction ids are free text and may hold slashes: see ``tracking/urls.py`` for how the routes tell
``…/{transaction_id}/events`` from an id that ends in ``/events``.
"""

from __future__ import annotations

from urllib.parse import unquote

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.pagination import ApiPagination
from api_access.paths import raw_request_path
from api_access.permissions import CanRead
from api_access.query import validated_query
from tracking.models import EventStatus, InstanceStatus, SourceKind
from tracking.progress.links import instance_tracking_url
from tracking.progress.milestones import CURRENT, REACHED, UPCOMING
from tracking.progress.selectors import (
    InstanceDetail,
    instance_detail,
    instance_email_subscriptions,
    instance_list,
    instance_state_label,
    transaction_events,
)

# Named choice sets, so that the OpenAPI schema gives each its own enum (SPECTACULAR_SETTINGS).
MILESTONE_STATUS_CHOICES = [REACHED, CURRENT, UPCOMING]
# Waiting instances are never shown.
INSTANCE_STATUS_CHOICES = [c for c in InstanceStatus.choices if c[0] != InstanceStatus.WAITING]


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


class _FailedEventSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    error = serializers.CharField(help_text="The error of the last try.")
    failed_at = serializers.DateTimeField()

    class Meta:
        ref_name = "FailedEvent"


class _EventCountsSerializer(serializers.Serializer):
    """One count per outcome, so that the schema names each."""

    pending = serializers.IntegerField(help_text="Stored, not applied yet.")
    applied = serializers.IntegerField()
    parked = serializers.IntegerField(help_text="Waiting for the instance to catch up.")
    ignored = serializers.IntegerField()
    expired = serializers.IntegerField(help_text="Parked for longer than the model's park_ttl.")
    failed = serializers.IntegerField(help_text="Failed on every try; holds the instance.")
    skipped = serializers.IntegerField(help_text="A failed event an operator skipped.")

    class Meta:
        ref_name = "EventCounts"


_TRANSACTION_ID_HELP = (
    "The transaction id, percent-encoded as a path segment: a `/` in it is `%2F`, a `%` is `%25`, a space "
    "`%20`, other characters their UTF-8 bytes (`ORD%2F7`, `caf%C3%A9`)."
)
_TRANSACTION_ID_PARAMETER = OpenApiParameter(
    "transaction_id", str, OpenApiParameter.PATH, description=_TRANSACTION_ID_HELP
)


class _EmailSubscriptionSerializer(serializers.Serializer):
    email = serializers.EmailField()
    language = serializers.CharField()
    confirmed = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_sent_at = serializers.DateTimeField(allow_null=True, help_text="The last update mail sent.")

    class Meta:
        ref_name = "InstanceEmailSubscription"


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
        event_counts = _EventCountsSerializer(
            help_text="The transaction's events by outcome; listed one by one at `.../events`."
        )
        duplicate_events = serializers.IntegerField(
            help_text="Copies of the transaction's events received again (same event id and body), not stored."
        )
        failed_events = _FailedEventSerializer(
            many=True,
            help_text="Events that failed to apply on every try. The instance's later events wait until an "
            "operator retries or skips them (in the admin).",
        )
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        updated_at = serializers.DateTimeField()
        email_subscriptions = _EmailSubscriptionSerializer(
            many=True,
            required=False,
            help_text="Staff only (absent for anyone else): the addresses customers asked to get this instance's "
            "updates at, from its page. They count once confirmed (double opt-in).",
        )
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
            "event_counts": detail.event_counts,
            "duplicate_events": detail.duplicates,
            "failed_events": [
                {"event_id": e.event_id, "event_type": e.event_type, "error": e.reason, "failed_at": e.processed_at}
                for e in detail.failed_events
            ],
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
            "with the time each was first reached), context, history, and its events counted by outcome. "
            "An instance that no event has started yet does not exist here (404); its events do, at "
            "`.../events`. Needs the reader scope."
        ),
        parameters=[_TRANSACTION_ID_PARAMETER],
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No started instance of this model and transaction."),
        },
    )
    def get(self, request, model_id: str, transaction_id: str):
        return self.answer(request, model_id=model_id, transaction_id=transaction_id)

    @classmethod
    def answer(cls, request, *, model_id: str, transaction_id: str) -> Response:
        detail = instance_detail(model_key=model_id, transaction_id=transaction_id)
        if detail is None:
            raise NotFound(f"No instance of model {model_id!r} for transaction {transaction_id!r}.")
        output = {
            **cls._output(detail),
            "tracking_url": instance_tracking_url(instance=detail.instance, request=request),
        }
        if request.user.is_staff:
            output["email_subscriptions"] = instance_email_subscriptions(instance_id=detail.instance.pk)
        return Response(cls.OutputSerializer(output).data)


def _events_segment_is_a_separator(request) -> bool:
    """Whether the path's last ``/events`` was sent as a segment of its own, not as the end of an id
    whose ``/`` was percent-encoded (``ORD%2Fevents``). Servers decode ``%2F`` before routing, so only
    the path as sent tells (gunicorn, uWSGI and ASGI servers keep it); without it, it is a segment."""
    raw = raw_request_path(request)
    if raw is None:
        return True
    return unquote(raw.rsplit("/", 1)[-1]) == "events"


class InstanceEventListApi(APIView):
    """Readers see every event of a transaction with its outcome, before and after it starts an instance."""

    permission_classes = [CanRead]
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        event_id = serializers.CharField()
        event_type = serializers.CharField()
        status = serializers.ChoiceField(choices=EventStatus.choices, help_text="The event's outcome so far.")
        reason = serializers.CharField(
            allow_blank=True,
            help_text="Why it was parked, ignored or expired; the error of a failed event; who skipped one.",
        )
        occurred_at = serializers.DateTimeField(help_text="When the source system saw it.")
        received_at = serializers.DateTimeField(help_text="When the service stored it.")
        processed_at = serializers.DateTimeField(allow_null=True, help_text="When its outcome was decided.")
        expires_at = serializers.DateTimeField(
            allow_null=True, help_text="Parked: when it expires unless the instance catches up (park_ttl)."
        )
        duplicates = serializers.IntegerField(
            source="duplicate_count", help_text="Copies received again (same event id and body), not stored."
        )
        source = serializers.CharField(source="sent_source", allow_blank=True, default="")
        source_kind = serializers.ChoiceField(choices=SourceKind.choices, help_text="How it arrived.")

        class Meta:
            ref_name = "TransactionEvent"

    @extend_schema(
        operation_id="instances_events_list",
        tags=["instances"],
        summary="The events of a transaction",
        description=(
            "Every event stored for the transaction, in arrival order (the order they are applied in), each with "
            "its outcome: `pending`, `applied`, `parked` (with `expires_at`), `ignored` (with the reason), "
            "`expired`, `failed` (with the error) or `skipped`; copies received again are counted in "
            "`duplicates`. A transaction whose events have not started an instance yet is listed too: its "
            "events are parked. 404 only when the transaction has no event at all. Needs the reader scope."
        ),
        parameters=[_TRANSACTION_ID_PARAMETER],
        responses={
            200: OutputSerializer(many=True),
            400: OpenApiResponse(description="`limit` or `offset` is invalid."),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No event of this model and transaction."),
        },
    )
    def get(self, request, model_id: str, transaction_id: str):
        if not _events_segment_is_a_separator(request):
            # ".../ORD%2Fevents": the instance "ORD/events" itself, not the events of "ORD".
            return InstanceDetailApi.answer(request, model_id=model_id, transaction_id=f"{transaction_id}/events")
        found = transaction_events(model_key=model_id, transaction_id=transaction_id)
        if found is None:
            raise NotFound(f"No event of model {model_id!r} for transaction {transaction_id!r}.")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(found.events, request, view=self)
        for event in page:
            parked = event.status == EventStatus.PARKED and found.park_ttl is not None
            event.expires_at = event.received_at + found.park_ttl if parked else None
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


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
        filters = validated_query(self.FilterSerializer, request)
        instances = instance_list(
            model_key=filters.get("model_id"),
            state=filters.get("state"),
            status=filters.get("status"),
            updated_since=filters.get("updated_since"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(instances, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
