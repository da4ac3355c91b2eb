"""``/api/v1/webhooks``: businesses manage their webhook subscriptions — list, create (the secret shown
once), read, change, delete, rotate the secret with an overlap, and send a test event now. For a
token whose user is staff or holds ``tracking.manage_webhooks``."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.models import ApiToken
from api_access.pagination import ApiPagination
from api_access.query import validated_query
from models_registry.models import StatusModel
from tracking.notify.models import ChangeKind, WebhookSubscription
from tracking.notify.subscriptions import (
    DEFAULT_OVERLAP,
    MAX_OVERLAP,
    subscription_create,
    subscription_enable,
    subscription_pause,
    subscription_problems,
    subscription_rotate_secret,
    subscription_send_test,
    subscription_update,
)

MANAGE_WEBHOOKS = "tracking.manage_webhooks"
# A named choice set, so that the OpenAPI schema gives it its own enum (SPECTACULAR_SETTINGS).
CHANGE_KIND_CHOICES = ChangeKind.choices


class CanManageWebhooks(BasePermission):
    message = f"Managing webhooks needs a staff user or the {MANAGE_WEBHOOKS!r} permission."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not isinstance(getattr(request, "auth", None), ApiToken) or not user or not user.is_active:
            return False
        return user.is_staff or user.has_perm(MANAGE_WEBHOOKS)


def _keys(help_text: str, **kwargs):
    return serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=200, help_text=help_text, **kwargs
    )


class _SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_id = serializers.CharField(source="model.key")
    url = serializers.URLField()
    description = serializers.CharField(allow_blank=True)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANGE_KIND_CHOICES), help_text="Empty: every kind."
    )
    states = serializers.ListField(child=serializers.CharField(), help_text="Only changes into these; empty: any.")
    milestones = serializers.ListField(child=serializers.CharField(), help_text="Only changes at these; empty: any.")
    context_fields = serializers.ListField(child=serializers.CharField(), help_text="Put in each payload's context.")
    is_active = serializers.BooleanField(help_text="False: nothing is sent (disabled by hand or after failing).")
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField(allow_blank=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the secret before the last rotation signs too; null: no overlap."
    )
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.get_username", allow_null=True, default=None)

    class Meta:
        ref_name = "WebhookSubscription"


class _SubscriptionWithSecretSerializer(_SubscriptionSerializer):
    secret = serializers.CharField(help_text="The signing secret (`whsec_…`). Shown this once: keep it.")

    class Meta:
        ref_name = "WebhookSubscriptionWithSecret"


class _WriteSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, help_text="http or https, on a public address.")
    description = serializers.CharField(max_length=200, allow_blank=True, required=False)
    kinds = _keys(
        "Kinds of change sent (" + ", ".join(f"`{kind}`" for kind in ChangeKind.values) + "); empty or left out: "
        "every kind.",
        required=False,
    )
    states = _keys("Only changes into these states of the model's latest version; empty: any.", required=False)
    milestones = _keys("Only changes that reach these milestones of the latest version; empty: any.", required=False)
    context_fields = _keys("Context fields put in each payload.", required=False)

    def validate(self, data):
        for name in ("kinds", "states", "milestones", "context_fields"):
            values = data.get(name) or []
            if len(set(values)) != len(values):
                raise ValidationError({name: ["Each value may be given once."]})
        return data


_UNAUTHORISED = OpenApiResponse(description="No or invalid token.")
_FORBIDDEN = OpenApiResponse(description="The token's user is neither staff nor holds `tracking.manage_webhooks`.")
_NOT_FOUND = OpenApiResponse(description="No such subscription.")
_REFUSED = (
    "A field is invalid, named in `errors`: an unknown model, a kind, state or milestone that the model's "
    "latest version does not know, or a URL that is refused (with why: not http(s), or resolving to a loopback, "
    "private, link-local or cloud metadata address)."
)


def _validated(serializer: serializers.Serializer) -> dict:
    """The serializer's data, or a 400 whose ``errors`` name each list item by its path (``states[0]``)."""
    if serializer.is_valid():
        return serializer.validated_data
    errors: dict[str, list[str]] = {}
    for field, messages in serializer.errors.items():
        if isinstance(messages, dict):  # a list field's items: {index: [messages]}
            for index, item_messages in messages.items():
                errors[f"{field}[{index}]"] = [str(message) for message in item_messages]
        else:
            errors[field] = [str(message) for message in messages]
    raise ValidationError(errors)


def _refuse(problems: dict[str, list[str]]) -> None:
    if problems:
        words = "; ".join(f"{field}: {message}" for field, messages in problems.items() for message in messages)
        raise ValidationError({"detail": words, "errors": problems})


def _subscription(subscription_id: int) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.select_related("model", "created_by").filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(f"No webhook subscription #{subscription_id}.")
    return subscription


class WebhookListApi(APIView):
    """Subscriptions, oldest first, of every model or of one."""

    permission_classes = [CanManageWebhooks]
    pagination_class = ApiPagination

    class FilterSerializer(serializers.Serializer):
        model_id = serializers.CharField(required=False, max_length=100, help_text="Only this model's.")

        class Meta:
            ref_name = "WebhookFilter"

    @extend_schema(
        operation_id="webhooks_list",
        tags=["webhooks"],
        summary="List webhook subscriptions",
        description="Without their secrets. Needs a staff user or the `tracking.manage_webhooks` permission.",
        parameters=[FilterSerializer],
        responses={200: _SubscriptionSerializer(many=True), 401: _UNAUTHORISED, 403: _FORBIDDEN},
    )
    def get(self, request):
        filters = validated_query(WebhookListApi.FilterSerializer, request)
        subscriptions = WebhookSubscription.objects.select_related("model", "created_by").order_by("pk")
        if "model_id" in filters:
            subscriptions = subscriptions.filter(model__key=filters["model_id"])
        paginator = WebhookListApi.pagination_class()
        page = paginator.paginate_queryset(subscriptions, request, view=self)
        return paginator.get_paginated_response(_SubscriptionSerializer(page, many=True).data)


class WebhookCreateApi(APIView):
    """A business subscribes an endpoint to a model's changes; the answer holds the secret, once."""

    permission_classes = [CanManageWebhooks]

    class InputSerializer(_WriteSerializer):
        model_id = serializers.CharField(max_length=100, help_text="The status model whose changes are sent.")

        class Meta:
            ref_name = "WebhookCreateRequest"

    @extend_schema(
        operation_id="webhooks_create",
        tags=["webhooks"],
        summary="Subscribe an endpoint",
        description="Creates an active subscription and answers with its signing `secret`, which is never shown "
        "again (rotate it to get a new one). Deliveries are signed as Standard Webhooks says (docs/notifications.md). "
        "Needs a staff user or the `tracking.manage_webhooks` permission.",
        request=InputSerializer,
        responses={
            201: _SubscriptionWithSecretSerializer,
            400: OpenApiResponse(description=_REFUSED),
            401: _UNAUTHORISED,
            403: _FORBIDDEN,
        },
        examples=[
            OpenApiExample(
                "Shipping news",
                request_only=True,
                value={
                    "url": "https://erp.example.com/hooks/status",
                    "model_id": "order-fulfilment",
                    "kinds": ["milestone", "outcome"],
                    "context_fields": ["carrier", "tracking_number"],
                },
            )
        ],
    )
    def post(self, request):
        data = _validated(WebhookCreateApi.InputSerializer(data=request.data))
        status_model = StatusModel.objects.filter(key=data["model_id"]).first()
        if status_model is None:
            _refuse({"model_id": [f"No model {data['model_id']!r}."]})
        filters = {name: data.get(name, []) for name in ("kinds", "states", "milestones", "context_fields")}
        _refuse(
            subscription_problems(
                status_model=status_model,
                url=data["url"],
                kinds=filters["kinds"],
                states=filters["states"],
                milestones=filters["milestones"],
            )
        )
        subscription = subscription_create(
            status_model=status_model,
            url=data["url"],
            description=data.get("description", ""),
            actor=request.user,
            **filters,
        )
        return Response(_SubscriptionWithSecretSerializer(subscription).data, status=status.HTTP_201_CREATED)


class WebhookCollectionApi(WebhookListApi, WebhookCreateApi):
    """``/api/v1/webhooks``: GET is ``WebhookListApi``, POST is ``WebhookCreateApi`` (one permission)."""


class WebhookDetailApi(APIView):
    """One subscription: read, change, delete."""

    permission_classes = [CanManageWebhooks]

    class UpdateSerializer(_WriteSerializer):
        url = serializers.URLField(max_length=2000, required=False, help_text="http or https, on a public address.")
        is_active = serializers.BooleanField(
            required=False,
            help_text="false: stop sending (changes meanwhile are not kept); true: send again, the kept "
            "notifications first (also after the endpoint was disabled for failing).",
        )

        class Meta:
            ref_name = "WebhookUpdateRequest"

        def validate(self, data):
            if "model_id" in self.initial_data:
                raise ValidationError({"model_id": ["A subscription's model cannot change; subscribe anew."]})
            return super().validate(data)

    @extend_schema(
        operation_id="webhooks_retrieve",
        tags=["webhooks"],
        summary="One webhook subscription",
        description="Without its secret. Needs a staff user or the `tracking.manage_webhooks` permission.",
        responses={200: _SubscriptionSerializer, 401: _UNAUTHORISED, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def get(self, request, subscription_id: int):
        return Response(_SubscriptionSerializer(_subscription(subscription_id)).data)

    @extend_schema(
        operation_id="webhooks_partial_update",
        tags=["webhooks"],
        summary="Change a webhook subscription",
        description="Only the fields sent change; checked as on creation. `is_active` enables or disables it. "
        "Needs a staff user or the `tracking.manage_webhooks` permission.",
        request=UpdateSerializer,
        responses={
            200: _SubscriptionSerializer,
            400: OpenApiResponse(description=_REFUSED),
            401: _UNAUTHORISED,
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def patch(self, request, subscription_id: int):
        subscription = _subscription(subscription_id)
        data = dict(_validated(self.UpdateSerializer(data=request.data, partial=True)))
        is_active = data.pop("is_active", None)
        _refuse(
            subscription_problems(
                status_model=subscription.model,
                url=data.get("url"),
                kinds=data.get("kinds", []),
                states=data.get("states", []),
                milestones=data.get("milestones", []),
            )
        )
        if data:
            subscription_update(subscription=subscription, **data)
        if is_active is True and not subscription.is_active:
            subscription_enable(subscription=subscription)
        elif is_active is False and subscription.is_active:
            subscription_pause(subscription=subscription, actor=request.user)
        return Response(_SubscriptionSerializer(_subscription(subscription_id)).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        tags=["webhooks"],
        summary="Delete a webhook subscription",
        description="With its notifications and their delivery log; nothing more is sent to it. "
        "Needs a staff user or the `tracking.manage_webhooks` permission.",
        responses={204: None, 401: _UNAUTHORISED, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def delete(self, request, subscription_id: int):
        _subscription(subscription_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(APIView):
    """A new secret, shown once; the old one keeps signing for an overlap."""

    permission_classes = [CanManageWebhooks]

    class InputSerializer(serializers.Serializer):
        overlap_hours = serializers.FloatField(
            required=False,
            min_value=0,
            max_value=MAX_OVERLAP.total_seconds() / 3600,
            default=DEFAULT_OVERLAP.total_seconds() / 3600,
            help_text="How long the old secret keeps signing too (each message then carries both signatures); "
            "0: it stops at once. Default 24.",
        )

        class Meta:
            ref_name = "WebhookRotateSecretRequest"

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        tags=["webhooks"],
        summary="Rotate a subscription's secret",
        description="Answers with the new `secret`, shown this once. Until `previous_secret_expires_at` every "
        "message is signed with both secrets, so a receiver can switch without losing one; a secret older than "
        "the one replaced now is dropped. Needs a staff user or the `tracking.manage_webhooks` permission.",
        request=InputSerializer,
        responses={
            200: _SubscriptionWithSecretSerializer,
            400: OpenApiResponse(description="The overlap is out of range."),
            401: _UNAUTHORISED,
            403: _FORBIDDEN,
            404: _NOT_FOUND,
        },
    )
    def post(self, request, subscription_id: int):
        subscription = _subscription(subscription_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        overlap = timedelta(hours=serializer.validated_data["overlap_hours"])
        subscription_rotate_secret(subscription=subscription, overlap=overlap)
        return Response(_SubscriptionWithSecretSerializer(subscription).data)


class WebhookTestApi(APIView):
    """Send a signed test event to the endpoint now and say what it answered."""

    permission_classes = [CanManageWebhooks]

    class OutputSerializer(serializers.Serializer):
        webhook_id = serializers.CharField(help_text="The test message's `webhook-id`.")
        delivered = serializers.BooleanField(help_text="The endpoint answered 2xx.")
        status_code = serializers.IntegerField(allow_null=True, help_text="Null: no answer (see `error`).")
        latency_ms = serializers.IntegerField()
        response_excerpt = serializers.CharField(allow_blank=True, help_text="The answer's first 1,000 characters.")
        error = serializers.CharField(allow_blank=True, help_text="A refused address, a timeout, a refused connection.")

        class Meta:
            ref_name = "WebhookTestResult"

    @extend_schema(
        operation_id="webhooks_test",
        tags=["webhooks"],
        summary="Send a test event",
        description="POSTs a signed event of type `webhook.test` (data: `model_id`, `subscription_id`, "
        "`message`) to the endpoint now, active or not, and answers 200 with what the endpoint answered, "
        "whatever that was. It is not a notification: not kept, not retried. Needs a staff user or the "
        "`tracking.manage_webhooks` permission.",
        request=None,
        responses={200: OutputSerializer, 401: _UNAUTHORISED, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
    def post(self, request, subscription_id: int):
        message_id, sent = subscription_send_test(subscription=_subscription(subscription_id))
        output = {
            "webhook_id": message_id,
            "delivered": sent.ok,
            "status_code": sent.status_code,
            "latency_ms": sent.latency_ms,
            "response_excerpt": sent.body_excerpt,
            "error": sent.error,
        }
        return Response(self.OutputSerializer(output).data)
