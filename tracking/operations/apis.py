"""``/api/v1/dead-letters``: operators list and read dead letters, replay them through ingestion (as
received or edited) and discard them, as in the admin. Each operation needs a permission of the
token's user (``tracking.view_deadletter``, ``tracking.replay_deadletter``,
``tracking.discard_deadletter``), given in the admin under Users or Groups."""

from __future__ import annotations

import base64
import json

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.models import ApiToken
from api_access.pagination import ApiPagination
from api_access.query import validated_query
from tracking.models import DeadLetter, ReplayOutcome, SourceKind
from tracking.operations.dead_letters import (
    INVALID,
    NOT_OPEN,
    REASON_CHOICES,
    STATUS_CHOICES,
    dead_letter_body_problems,
    dead_letter_list,
    dead_letter_replay,
    dead_letter_status,
    dead_letters_discard,
)

# Named choice sets, so that the OpenAPI schema gives each its own enum (SPECTACULAR_SETTINGS).
DEAD_LETTER_STATUS_CHOICES = STATUS_CHOICES
REPLAY_OUTCOME_CHOICES = ReplayOutcome.choices


class _UserPermission(BasePermission):
    """A valid token whose user holds ``permission`` (superusers hold every one)."""

    permission = ""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not isinstance(getattr(request, "auth", None), ApiToken) or not user or not user.is_active:
            return False
        return user.has_perm(self.permission)


class CanViewDeadLetters(_UserPermission):
    permission = "tracking.view_deadletter"
    message = f"Reading dead letters needs the {permission!r} permission."


class CanReplayDeadLetters(_UserPermission):
    permission = "tracking.replay_deadletter"
    message = f"Replaying dead letters needs the {permission!r} permission."


class CanDiscardDeadLetters(_UserPermission):
    permission = "tracking.discard_deadletter"
    message = f"Discarding dead letters needs the {permission!r} permission."


class NotOpen(APIException):
    status_code = 409
    default_code = "not_open"


class _ReplaySerializer(serializers.Serializer):
    replayed_at = serializers.DateTimeField()
    replayed_by = serializers.CharField(allow_null=True, help_text="Null when that user was deleted.")
    edited = serializers.BooleanField(help_text="Whether an operator's edit was replayed rather than the raw input.")
    outcome = serializers.ChoiceField(choices=REPLAY_OUTCOME_CHOICES, help_text="What ingestion answered.")
    event_id = serializers.CharField(allow_blank=True, help_text="The inbox event it became, or already was.")
    detail = serializers.CharField(allow_blank=True, help_text="Why it was refused again, or the warning.")

    class Meta:
        ref_name = "DeadLetterReplay"


class _DiscardSerializer(serializers.Serializer):
    discarded_at = serializers.DateTimeField()
    discarded_by = serializers.CharField(allow_null=True, help_text="Null when that user was deleted.")
    reason = serializers.CharField()

    class Meta:
        ref_name = "DeadLetterDiscard"


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


class _DeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    source_kind = serializers.ChoiceField(choices=SourceKind.choices)
    source_ref = serializers.CharField(allow_blank=True, help_text="A file and line, a Kinesis record, a request.")
    field = serializers.CharField(allow_blank=True, help_text="The field of the first problem; empty: the whole input.")
    reason = serializers.CharField()
    status = serializers.SerializerMethodField()
    replay_of = serializers.IntegerField(
        source="replay_of_id", allow_null=True, help_text="The dead letter whose replay was refused again as this one."
    )
    replay = serializers.SerializerMethodField(help_text="Null until it is replayed.")
    discard = serializers.SerializerMethodField(help_text="Null unless it was discarded.")

    class Meta:
        ref_name = "DeadLetterSummary"

    @extend_schema_field(serializers.ChoiceField(choices=DEAD_LETTER_STATUS_CHOICES))
    def get_status(self, letter) -> str:
        return dead_letter_status(letter)

    @extend_schema_field(_ReplaySerializer(allow_null=True))
    def get_replay(self, letter) -> dict | None:
        if letter.replayed_at is None:
            return None
        return {
            "replayed_at": letter.replayed_at,
            "replayed_by": _username(letter.replayed_by),
            "edited": letter.replayed_raw is not None,
            "outcome": letter.replay_outcome,
            "event_id": letter.replay_event_id,
            "detail": letter.replay_detail,
        }

    @extend_schema_field(_DiscardSerializer(allow_null=True))
    def get_discard(self, letter) -> dict | None:
        if letter.discarded_at is None:
            return None
        return {
            "discarded_at": letter.discarded_at,
            "discarded_by": _username(letter.discarded_by),
            "reason": letter.discard_reason,
        }


def _letter(dead_letter_id: int) -> DeadLetter:
    letter = dead_letter_list().filter(pk=dead_letter_id).first()
    if letter is None:
        raise NotFound(f"No dead letter #{dead_letter_id}.")
    return letter


_UNAUTHORISED = OpenApiResponse(description="No or invalid token.")


def _action_responses(ok, *, refused: str) -> dict:
    """The answers of an action on one dead letter."""
    return {
        200: ok,
        400: OpenApiResponse(description=refused),
        401: _UNAUTHORISED,
        403: OpenApiResponse(description="The token's user lacks the permission."),
        404: OpenApiResponse(description="No such dead letter."),
        409: OpenApiResponse(description="The dead letter was replayed or discarded before."),
    }


class DeadLetterListApi(APIView):
    """Operators list dead letters, newest first, filtered."""

    permission_classes = [CanViewDeadLetters]
    pagination_class = ApiPagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            required=False, choices=DEAD_LETTER_STATUS_CHOICES, help_text="open: neither replayed nor discarded."
        )
        reason = serializers.ChoiceField(required=False, choices=REASON_CHOICES, help_text="The kind of reason.")
        source_kind = serializers.ChoiceField(required=False, choices=SourceKind.choices)
        field = serializers.CharField(
            required=False, allow_blank=True, max_length=100, help_text="Empty: the whole input."
        )
        received_since = serializers.DateTimeField(required=False, help_text="RFC 3339; encode '+' as %2B.")
        received_before = serializers.DateTimeField(required=False, help_text="RFC 3339; encode '+' as %2B.")

        class Meta:
            ref_name = "DeadLetterFilter"

    @extend_schema(
        operation_id="dead_letters_list",
        tags=["dead letters"],
        summary="List dead letters",
        description="Rejected input, newest first, filtered. Needs the `tracking.view_deadletter` permission.",
        parameters=[FilterSerializer],
        responses={
            200: _DeadLetterSerializer(many=True),
            400: OpenApiResponse(description="A filter is invalid."),
            401: _UNAUTHORISED,
            403: OpenApiResponse(description="The token's user lacks the permission."),
        },
    )
    def get(self, request):
        filters = validated_query(self.FilterSerializer, request)
        letters = dead_letter_list(**filters)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(letters, request, view=self)
        return paginator.get_paginated_response(_DeadLetterSerializer(page, many=True).data)


class DeadLetterDetailApi(APIView):
    """Operators read one dead letter with its raw input: as text when it is UTF-8, always in base64."""

    permission_classes = [CanViewDeadLetters]

    class OutputSerializer(_DeadLetterSerializer):
        raw_size = serializers.IntegerField(help_text="Bytes.")
        raw_text = serializers.CharField(allow_null=True, help_text="The raw input as text; null when not UTF-8.")
        raw_base64 = serializers.CharField(help_text="The raw input, base64-encoded.")
        replayed_body_base64 = serializers.CharField(
            allow_null=True, help_text="The edited body that was replayed, base64-encoded; null when not edited."
        )
        rejected_replays = serializers.ListField(
            child=serializers.IntegerField(), help_text="Dead letters its replays left when refused again."
        )

        class Meta:
            ref_name = "DeadLetterDetail"

    @staticmethod
    def output(letter: DeadLetter) -> dict:
        raw, replayed = bytes(letter.raw), letter.replayed_raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            **_DeadLetterSerializer(letter).data,
            "raw_size": len(raw),
            "raw_text": text,
            "raw_base64": base64.b64encode(raw).decode(),
            "replayed_body_base64": base64.b64encode(bytes(replayed)).decode() if replayed is not None else None,
            "rejected_replays": list(letter.rejected_replays.order_by("pk").values_list("pk", flat=True)),
        }

    @extend_schema(
        operation_id="dead_letters_retrieve",
        tags=["dead letters"],
        summary="One dead letter",
        description="Where it came from, why it was refused, its raw input and what was done with it. "
        "Needs the `tracking.view_deadletter` permission.",
        responses={
            200: OutputSerializer,
            401: _UNAUTHORISED,
            403: OpenApiResponse(description="The token's user lacks the permission."),
            404: OpenApiResponse(description="No such dead letter."),
        },
    )
    def get(self, request, dead_letter_id: int):
        return Response(self.output(_letter(dead_letter_id)))


class DeadLetterReplayApi(APIView):
    """Operators replay a dead letter through ingestion, as received or with an edited body."""

    permission_classes = [CanReplayDeadLetters]

    class InputSerializer(serializers.Serializer):
        body = serializers.JSONField(
            required=False,
            help_text="The event to replay instead of the raw input (an edit): a JSON value, checked as "
            "POST /api/v1/events checks an event. Left out: the raw input as received.",
        )

        class Meta:
            ref_name = "DeadLetterReplayRequest"

    class OutputSerializer(serializers.Serializer):
        dead_letter_id = serializers.IntegerField()
        outcome = serializers.ChoiceField(
            choices=REPLAY_OUTCOME_CHOICES,
            help_text="accepted: stored in the inbox; duplicate: the inbox held this event id already, nothing "
            "changed; conflict or rejected: ingestion refused it again and kept it as a new dead letter.",
        )
        event_id = serializers.CharField(allow_null=True)
        warning = serializers.CharField(allow_blank=True, help_text="An accepted event that cannot have an effect.")
        errors = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text='Why ingestion refused it again, by field ("" for the event as a whole).',
        )
        new_dead_letter_id = serializers.IntegerField(allow_null=True)

        class Meta:
            ref_name = "DeadLetterReplayResult"

    @extend_schema(
        operation_id="dead_letters_replay",
        tags=["dead letters"],
        summary="Replay a dead letter",
        description="Sends the dead letter (or `body`, an edit of it) through ingestion, like any producer's "
        "event: every check applies, and an event id the inbox holds is a duplicate. Recorded on the dead letter "
        "with the token's user. An event that is still invalid is not sent: 400, and the dead letter stays open. "
        "Needs the `tracking.replay_deadletter` permission.",
        request=InputSerializer,
        responses=_action_responses(
            OutputSerializer, refused="The event is still invalid (errors by `event.<field>`); nothing sent."
        ),
    )
    def post(self, request, dead_letter_id: int):
        letter = _letter(dead_letter_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = None
        if "body" in serializer.validated_data:
            body = json.dumps(serializer.validated_data["body"], ensure_ascii=False, separators=(",", ":")).encode()
            _refuse_invalid(dead_letter_body_problems(letter=letter, body=body))
        result = dead_letter_replay(dead_letter_id=letter.pk, actor=request.user, body=body)
        if result.outcome == NOT_OPEN:
            raise NotOpen(f"Dead letter #{letter.pk} was replayed or discarded before.")
        if result.outcome == INVALID:
            _refuse_invalid(result.problems)
        errors: dict[str, list[str]] = {}
        for field, reason in result.problems:
            errors.setdefault(field, []).append(reason)
        output = {
            "dead_letter_id": result.dead_letter_id,
            "outcome": result.outcome,
            "event_id": result.event_id,
            "warning": result.warning,
            "errors": errors,
            "new_dead_letter_id": result.new_dead_letter_id,
        }
        return Response(self.OutputSerializer(output).data)


def _refuse_invalid(problems: list[tuple[str, str]]) -> None:
    if not problems:
        return
    errors: dict[str, list[str]] = {}
    for field, reason in problems:
        errors.setdefault(f"event.{field}" if field else "event", []).append(reason)
    words = "; ".join(f"{key}: {reason}" for key, reasons in errors.items() for reason in reasons)
    raise ValidationError({"detail": f"The event is still invalid; it was not replayed: {words}", "errors": errors})


class DeadLetterDiscardApi(APIView):
    """Operators set a dead letter aside, with a reason."""

    permission_classes = [CanDiscardDeadLetters]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500, help_text="Why; recorded with the token's user.")

        class Meta:
            ref_name = "DeadLetterDiscardRequest"

    @extend_schema(
        operation_id="dead_letters_discard",
        tags=["dead letters"],
        summary="Discard a dead letter",
        description="A discarded dead letter is never replayed; it is kept, with who discarded it and why. "
        "Needs the `tracking.discard_deadletter` permission.",
        request=InputSerializer,
        responses=_action_responses(DeadLetterDetailApi.OutputSerializer, refused="No reason given."),
    )
    def post(self, request, dead_letter_id: int):
        letter = _letter(dead_letter_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not dead_letters_discard(
            dead_letter_ids=[letter.pk], actor=request.user, reason=serializer.validated_data["reason"]
        ):
            raise NotOpen(f"Dead letter #{letter.pk} was replayed or discarded before.")
        return Response(DeadLetterDetailApi.output(_letter(letter.pk)))
