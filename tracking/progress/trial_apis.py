"""``POST /api/v1/models/{id}/try``: what a version of a model, or its draft, would do with one event.

Readers send a state (or none: no instance yet), a context and an event; the answer is the decision of
the workers' own engine (``tracking.apply.trial``), for an instance that is not stored: nothing is
read from or written to the inbox or the instances. Businesses test their models with it in their CI.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.permissions import CanRead
from models_registry.definition import Definition, DefinitionError
from models_registry.selectors import draft_definition, model_version, version_definition
from tracking.apply.trial import OUTCOMES, event_try
from tracking.arrival.apis import CLOUD_EVENT_SCHEMA, ENVELOPE_SCHEMA
from tracking.arrival.trial_event import CLOUDEVENTS_NAMES, EVENT_DEFAULTS, trial_envelope

DRAFT = "draft"


class TryRefused(APIException):
    """A 400 in the API's error format, with messages by field path."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, detail: str, errors: dict[str, list[str]]):
        super().__init__({"detail": detail, "errors": errors})


VERSION_SCHEMA = {
    "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [DRAFT]}],
    "description": 'A published version number, or "draft" for the model\'s draft as it would be published.',
}


@extend_schema_field(VERSION_SCHEMA)
class _VersionField(serializers.Field):
    default_error_messages = {"invalid": 'Must be a version number (1 or more) or "draft".'}

    def to_internal_value(self, data):
        if data == DRAFT:
            return DRAFT
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or data < 1:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


_DEFAULTED = {
    "event_id": f"Default: `{EVENT_DEFAULTS['event_id']}`.",
    "model_id": "Default: the model of the URL; another model is a 400.",
    "transaction_id": f"Default: `{EVENT_DEFAULTS['transaction_id']}`.",
}


def _defaulted(schema: dict, *, title: str, names: dict[str, str]) -> dict:
    """An envelope's schema in which the fields given defaults may be left out or null."""
    properties = dict(schema["properties"])
    for native, name in names.items():
        properties[name] = {**properties[name], "nullable": True, "description": _DEFAULTED[native]}
    required = [name for name in schema["required"] if name not in names.values()]
    return {**schema, "title": title, "properties": properties, "required": required}


EVENT_SCHEMA = {
    "oneOf": [
        {
            **_defaulted(ENVELOPE_SCHEMA, title="TryEventEnvelope", names={n: n for n in EVENT_DEFAULTS}),
            "description": "One event in the native form (docs/spec/events.md).",
        },
        {
            **_defaulted(
                CLOUD_EVENT_SCHEMA,
                title="TryCloudEvent",
                names={n: CLOUDEVENTS_NAMES[n] for n in EVENT_DEFAULTS},
            ),
            "description": "One event in the CloudEvents 1.0 structured form.",
        },
    ],
    "description": "The event to try, native or CloudEvents. `occurred_at` left out: the time of the request.",
}


@extend_schema_field(EVENT_SCHEMA)
class _EventField(serializers.DictField):
    pass


class _StepSerializer(serializers.Serializer):
    from_state = serializers.CharField(allow_blank=True, help_text="Empty for the creation.")
    to_state = serializers.CharField()

    class Meta:
        ref_name = "TryStep"


def _definition(model_id: str, version: int | str | None) -> tuple[Definition, int | str, str]:
    """The definition to try, its version number (or "draft") and its name in messages; a 404 or a
    400 when there is none."""
    if version == DRAFT:
        try:
            definition = draft_definition(key=model_id)
        except DefinitionError as exc:
            raise TryRefused(
                f"The draft of model {model_id!r} is invalid; fix it to try it. {exc}", exc.errors
            ) from None
        if definition is None:
            raise NotFound(f"No model {model_id!r}.")
        return definition, DRAFT, f"the draft of {model_id!r}"
    found = model_version(key=model_id, number=version)
    if found is None:
        which = f"version {version} of model {model_id!r}" if version else f"published version of model {model_id!r}"
        raise NotFound(f"No {which}.")
    return version_definition(version_id=found.pk), found.number, f"version {found.number} of {model_id!r}"


class ModelTryApi(APIView):
    """Readers ask what a model version, or the draft, would do with an event; nothing is stored."""

    permission_classes = [CanRead]

    class InputSerializer(serializers.Serializer):
        version = _VersionField(required=False, help_text='Default: the latest published version. "draft": the draft.')
        state = serializers.CharField(
            required=False,
            allow_null=True,
            max_length=64,
            trim_whitespace=False,
            help_text="The instance's state; null or left out: no instance yet.",
        )
        context = serializers.DictField(
            required=False, help_text="The instance's context (default: empty); only with a state."
        )
        event = _EventField()

        class Meta:
            ref_name = "TryRequest"

    class OutputSerializer(serializers.Serializer):
        model_id = serializers.CharField()
        version = _VersionField(help_text='The version tried, or "draft".')
        outcome = serializers.ChoiceField(
            choices=OUTCOMES,
            help_text="`created`: the event starts the instance; `applied`: it takes a transition; `parked`: it "
            "waits for the instance to get where it applies; `ignored`: it never will; `failed`: the model's "
            "handler raised or chose a move the model does not declare (a worker would mark it failed).",
        )
        reason = serializers.CharField(allow_blank=True, help_text="Why, in words (the reason workers record).")
        from_state = serializers.CharField(allow_null=True, help_text="The state given; null: no instance yet.")
        to_state = serializers.CharField(
            allow_null=True,
            help_text="The state afterwards (the same when the event does not apply); null: no instance.",
        )
        steps = _StepSerializer(
            many=True,
            help_text="The transitions taken, in order: `created`, the creation (an empty `from_state`) and, when "
            "one matches, a transition from the initial state; `applied`, one transition; otherwise none.",
        )
        context_updates = serializers.DictField(help_text="The fields the transition's `set` stores.")
        context = serializers.DictField(help_text="The instance's context afterwards.")
        waits_for = serializers.ListField(
            child=serializers.CharField(),
            help_text="Parked: the states, still reachable, from which the event would apply.",
        )
        event = serializers.DictField(
            help_text="The event as the model's `when` and `set` read it, defaults filled in."
        )

        class Meta:
            ref_name = "TryResult"

    @extend_schema(
        operation_id="models_try",
        tags=["models"],
        summary="Try an event on a model",
        description=(
            'What a published version of the model (default: the latest) or its draft (`"version": "draft"`) '
            "would do with one event for an instance in `state` with `context`: the decision of the workers' own "
            "engine and the model's handler. Nothing is stored, no instance is touched. A state the version does not "
            "have, an invalid event or a draft that could not be published is a 400 naming the field (for a draft, "
            "every error by the document's field path, as `POST /api/v1/models` names them). Needs the reader scope."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                description="Invalid input: unknown state, invalid event, another model's event, or an invalid draft."
            ),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No such model, no such version, or no published version."),
        },
        examples=[
            OpenApiExample(
                "Parcel picked up",
                request_only=True,
                value={
                    "version": 1,
                    "state": "packed",
                    "context": {},
                    "event": {"event_type": "carrier.picked_up", "data": {"carrier": "DHL", "tracking_number": "JD01"}},
                },
            ),
            OpenApiExample(
                "First event, on the draft",
                request_only=True,
                value={"version": DRAFT, "state": None, "event": {"event_type": "order.placed"}},
            ),
            OpenApiExample(
                "Applied",
                response_only=True,
                value={
                    "model_id": "order-fulfilment",
                    "version": 1,
                    "outcome": "applied",
                    "reason": "",
                    "from_state": "packed",
                    "to_state": "shipped",
                    "steps": [{"from_state": "packed", "to_state": "shipped"}],
                    "context_updates": {"carrier": "DHL", "tracking_number": "JD01"},
                    "context": {"carrier": "DHL", "tracking_number": "JD01"},
                    "waits_for": [],
                    "event": {
                        "event_id": "try-event",
                        "model_id": "order-fulfilment",
                        "transaction_id": "try-transaction",
                        "event_type": "carrier.picked_up",
                        "occurred_at": "2026-11-26T13:00:00.123456Z",
                        "source": "",
                        "data": {"carrier": "DHL", "tracking_number": "JD01"},
                    },
                },
            ),
            OpenApiExample(
                "Parked",
                response_only=True,
                value={
                    "model_id": "order-fulfilment",
                    "version": 1,
                    "outcome": "parked",
                    "reason": "waits for the instance to reach a state that 'warehouse.packed' leaves",
                    "from_state": "received",
                    "to_state": "received",
                    "steps": [],
                    "context_updates": {},
                    "context": {},
                    "waits_for": ["paid"],
                    "event": {
                        "event_id": "try-event",
                        "model_id": "order-fulfilment",
                        "transaction_id": "try-transaction",
                        "event_type": "warehouse.packed",
                        "occurred_at": "2026-11-26T11:00:00Z",
                        "source": "",
                        "data": {},
                    },
                },
            ),
        ],
    )
    def post(self, request, model_id: str):
        if not isinstance(request.data, dict):
            # Said of the request as a whole, as the error format has it (not DRF's "non_field_errors").
            raise TryRefused("The body must be a JSON object.", {"": ["The body must be a JSON object."]})
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = serializer.validated_data
        definition, version, which = _definition(model_id, given.get("version"))

        errors: dict[str, list[str]] = {}
        state = given.get("state") or ""
        context = given.get("context") or {}
        if state and state not in definition.kinds:
            errors["state"] = [f"{state!r} is not a state of {which} (its states: {', '.join(definition.kinds)})"]
        if context and not state:
            errors["context"] = ["an instance that does not exist yet has no context: give a state, or no context"]
        envelope = trial_envelope(model_id, given["event"], errors)
        if errors:
            raise TryRefused("; ".join(f"{path}: {' '.join(messages)}" for path, messages in errors.items()), errors)

        trial = event_try(definition=definition, state=state, context=context, envelope=envelope)
        return Response(
            self.OutputSerializer(
                {
                    "model_id": model_id,
                    "version": version,
                    "outcome": trial.outcome,
                    "reason": trial.reason,
                    "from_state": trial.from_state,
                    "to_state": trial.to_state,
                    "steps": trial.steps,
                    "context_updates": trial.context_updates,
                    "context": trial.context,
                    "waits_for": trial.waits_for,
                    "event": envelope,
                }
            ).data
        )
