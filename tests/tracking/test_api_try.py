"""POST /api/v1/models/{id}/try: the answer is what the workers do with the same event.

For every outcome of the spec's "What happens to an event", a real instance is brought to the state
and context of the case, the event is ingested and applied by ``instances_apply_pending``, and the
endpoint's answer for the same state, context and event must say what the workers did: the event's
status, the instance's state and context, the transitions recorded, the envelope stored.
"""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_registry.services import draft_save, model_import
from tests.conftest import edit_draft, load_example_model, transition_of
from tests.events import ingest, order_event
from tests.tracking.test_fsm import apply_all
from tracking.models import DeadLetter, EventStatus, InboxEvent, ProcessInstance, TransitionRecord
from tracking.operations.moves import instance_move_manually

pytestmark = pytest.mark.django_db

ORDERS = "order-fulfilment"
CLAIM = {
    "id": "claim",
    "name": "Insurance claim",
    "initial_state": "filed",
    "states": [
        {"key": "filed", "label": "Claim filed"},
        {"key": "assessed", "label": "Assessed"},
        {"key": "approved", "label": "Approved", "kind": "success"},
        {"key": "declined", "label": "Declined", "kind": "failure"},
        {"key": "on_hold", "label": "On hold", "kind": "exception"},
    ],
    # No start_events: any event type starts a claim.
    "transitions": [
        {"event": "claim.assessed", "from": ["filed"], "to": "assessed", "set": {"amount": "data.amount"}},
        {"event": "claim.decided", "from": ["assessed"], "to": "approved", "when": "data.approved == `true`"},
        {"event": "claim.decided", "from": ["assessed"], "to": "declined", "when": "data.approved == `false`"},
        {"event": "claim.paused", "from": "*", "to": "on_hold", "set": {"why": "data.why"}},
        {"event": "claim.resumed", "from": ["on_hold"], "to": "assessed"},
    ],
}
PARCELS = "parcel-delivery"  # examples/parcel-delivery.yaml: the forward_only handler
START_EVENT = {ORDERS: "order.placed", "claim": "setup", PARCELS: "parcel.announced"}

# (model, state or None for no instance yet, context, event type, data, the outcome the spec says)
CASES = [
    # 3. No instance yet
    (ORDERS, None, {}, "order.placed", {}, "created"),
    (ORDERS, None, {}, "payment.captured", {}, "parked"),
    ("claim", None, {}, "claim.assessed", {"amount": 1200}, "created"),  # and the transition from filed
    ("claim", None, {}, "claim.paused", {"why": "docs"}, "created"),  # and "*" from filed
    ("claim", None, {}, "claim.decided", {"approved": True}, "created"),  # created only: decided leaves assessed
    # 4. The first matching entry applies, with its set fields
    (ORDERS, "received", {}, "payment.captured", {"amount": 5}, "applied"),
    (
        ORDERS,
        "packed",
        {"note": "fragile"},
        "carrier.picked_up",
        {"carrier": "DHL", "tracking_number": "T1"},
        "applied",
    ),
    (ORDERS, "packed", {"carrier": "UPS"}, "carrier.picked_up", {"carrier": "DHL"}, "applied"),  # a null set
    (ORDERS, "on_hold", {}, "payment.captured", {}, "applied"),  # leaving an exception state
    (ORDERS, "received", {}, "order.cancelled", {"reason": "changed mind"}, "applied"),  # when true
    ("claim", "assessed", {"amount": 5}, "claim.decided", {"approved": False}, "applied"),  # second entry matches
    ("claim", "assessed", {"amount": 5}, "claim.paused", {"why": "fraud check"}, "applied"),
    (PARCELS, "announced", {}, "parcel.delivered", {"signed_by": "Kim"}, "applied"),  # furthest step wins
    # 5. Parked: it can apply from a state the instance can still reach
    (ORDERS, "received", {}, "warehouse.packed", {}, "parked"),
    (ORDERS, "received", {"x": 1}, "carrier.delivered", {}, "parked"),
    ("claim", "filed", {}, "claim.decided", {"approved": True}, "parked"),
    # 6. Ignored
    (ORDERS, "received", {}, "order.cancelled", {}, "ignored"),  # when false, and no other entry
    ("claim", "assessed", {}, "claim.decided", {"approved": "maybe"}, "ignored"),  # no when holds
    (ORDERS, "delivered", {"carrier": "DHL"}, "carrier.delivered", {}, "ignored"),  # terminal
    (ORDERS, "cancelled", {}, "payment.captured", {}, "ignored"),  # terminal
    (ORDERS, "paid", {}, "gift.wrapped", {}, "ignored"),  # no transition for the type
    (ORDERS, "received", {}, "order.placed", {}, "ignored"),  # a start event for a started instance
    (ORDERS, "shipped", {}, "payment.captured", {}, "ignored"),  # stale: its sources are behind
    (PARCELS, "out_for_delivery", {}, "parcel.scanned", {}, "ignored"),  # forward_only: a late scan is stale
]


@pytest.fixture
def models(example_model):
    model_import(document=CLAIM)
    load_example_model("parcel-delivery.yaml")


@pytest.fixture
def reader(api_client):
    return api_client(read=True)


def ingest_and_apply(event: dict) -> None:
    ingest(event)
    assert not apply_all().failed


def instance_in(model_id: str, transaction_id: str, state: str, context: dict) -> ProcessInstance:
    """A real instance in ``state`` with ``context``: started by an event, then moved by an operator."""
    ingest_and_apply(order_event(f"{transaction_id}-start", transaction_id, START_EVENT[model_id], model_id=model_id))
    instance = ProcessInstance.objects.get(model__key=model_id, transaction_id=transaction_id)
    if instance.state != state:
        instance_move_manually(instance_id=instance.pk, target=state, actor=None, note="test set-up")
    ProcessInstance.objects.filter(pk=instance.pk).update(context=context)
    return instance


def workers_decide(model_id: str, state: str | None, context: dict, event: dict) -> dict:
    """What the workers do with ``event`` for an instance in ``state``: in the endpoint's terms."""
    if state is not None:
        instance_in(model_id, event["transaction_id"], state, context)
    ingest_and_apply(event)
    stored = InboxEvent.objects.get(event_id=event["event_id"])
    instance = stored.instance
    instance.refresh_from_db()
    steps = [
        {"from_state": r.from_state, "to_state": r.to_state}
        for r in TransitionRecord.objects.filter(event=stored).order_by("pk")
    ]
    outcome = stored.status
    if outcome == EventStatus.APPLIED and steps[0]["from_state"] == "":
        outcome = "created"
    return {
        "outcome": outcome,
        "reason": stored.reason,
        "to_state": instance.state or None,
        "steps": steps,
        "context": instance.context,
        "event": stored.envelope,
    }


def try_event(client, model_id: str, body: dict, *, status: int = 200) -> dict:
    response = client.post(f"/api/v1/models/{model_id}/try", body, format="json")
    assert response.status_code == status, response.content
    return response.json()


@pytest.mark.parametrize(("model_id", "state", "context", "event_type", "data", "spec_outcome"), CASES)
def test_the_answer_is_what_the_workers_do(models, reader, model_id, state, context, event_type, data, spec_outcome):
    # Given an event for an instance in this state with this context
    event = order_event(f"{event_type}-{state}", f"T-{event_type}-{state}", event_type, model_id=model_id, **data)

    # When it is tried, and when the workers apply it to a real instance
    answer = try_event(reader, model_id, {"version": 1, "state": state, "context": context, "event": event})
    done = workers_decide(model_id, state, context, event)

    # Then the answer says what the workers did, and what the spec says
    assert answer["outcome"] == done["outcome"] == spec_outcome
    assert {key: answer[key] for key in done} == done
    assert (answer["model_id"], answer["version"], answer["from_state"]) == (model_id, 1, state)
    if spec_outcome in ("created", "applied"):
        assert answer["context"] == {**context, **answer["context_updates"]}
    else:
        assert (answer["to_state"], answer["context"], answer["context_updates"]) == (state, context, {})
    assert bool(answer["waits_for"]) == (spec_outcome == "parked")


def test_created_with_a_transition_from_the_initial_state(models, reader):
    answer = try_event(reader, "claim", {"event": {"event_type": "claim.assessed", "data": {"amount": 1200}}})

    assert answer["outcome"] == "created"
    assert answer["steps"] == [
        {"from_state": "", "to_state": "filed"},
        {"from_state": "filed", "to_state": "assessed"},
    ]
    assert (answer["from_state"], answer["to_state"]) == (None, "assessed")
    assert answer["context_updates"] == answer["context"] == {"amount": 1200}


def test_parked_says_what_it_waits_for(example_model, reader):
    later = try_event(reader, ORDERS, {"state": "received", "event": {"event_type": "carrier.picked_up"}})
    not_started = try_event(reader, ORDERS, {"event": {"event_type": "payment.captured"}})

    assert (later["outcome"], later["waits_for"]) == ("parked", ["packed"])
    assert later["reason"] == "waits for the instance to reach a state that 'carrier.picked_up' leaves"
    assert (not_started["outcome"], not_started["waits_for"]) == ("parked", ["received", "on_hold"])
    assert not_started["reason"] == "no instance yet and this event type cannot start one"


def test_defaults_fill_the_fields_a_business_need_not_type(example_model, reader):
    answer = try_event(reader, ORDERS, {"state": "packed", "event": {"event_type": "carrier.picked_up"}})

    event = answer["event"]
    assert (event["event_id"], event["model_id"], event["transaction_id"]) == ("try-event", ORDERS, "try-transaction")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", event["occurred_at"])
    assert (event["source"], event["data"]) == ("", {})
    # The latest version by default; an empty context; nulls for the fields the event lacks
    assert (answer["version"], answer["outcome"], answer["to_state"]) == (1, "applied", "shipped")
    assert answer["context"] == {"carrier": None, "tracking_number": None}


def test_a_cloudevent_gets_the_same_defaults(example_model, reader):
    answer = try_event(reader, ORDERS, {"event": {"specversion": "1.0", "type": "order.placed", "id": None}})

    assert (answer["outcome"], answer["to_state"]) == ("created", "received")
    assert answer["event"]["event_id"] == "try-event"
    assert answer["event"]["model_id"] == ORDERS


def test_the_draft_answers_with_its_own_transitions(example_model, reader):
    # Given a draft in which warehouse.packed leaves received instead of paid
    edit_draft(ORDERS, lambda d: transition_of(d, "warehouse.packed").update({"from": ["received"]}))
    body = {"state": "received", "event": {"event_type": "warehouse.packed"}}

    published = try_event(reader, ORDERS, {**body, "version": 1})
    draft = try_event(reader, ORDERS, {**body, "version": "draft"})

    assert (published["version"], published["outcome"], published["to_state"]) == (1, "parked", "received")
    assert (draft["version"], draft["outcome"], draft["to_state"]) == ("draft", "applied", "packed")


def test_the_draft_of_a_model_never_published(db, reader):
    draft_save(
        document={
            "id": "loan",
            "name": "Loan",
            "initial_state": "applied",
            "states": [
                {"key": "applied", "label": "Applied", "kind": "step"},
                {"key": "approved", "label": "Approved", "kind": "success"},
            ],
            "transitions": [{"event": "loan.approved", "from": ["applied"], "to": "approved"}],
        }
    )

    draft = try_event(
        reader, "loan", {"version": "draft", "state": "applied", "event": {"event_type": "loan.approved"}}
    )
    published = try_event(reader, "loan", {"event": {"event_type": "loan.approved"}}, status=404)

    assert (draft["outcome"], draft["to_state"]) == ("applied", "approved")
    assert published["detail"] == "No published version of model 'loan'."


def test_an_invalid_draft_is_a_400_naming_its_errors(example_model, reader):
    edit_draft(ORDERS, lambda d: transition_of(d, "warehouse.packed").update({"to": "pakced"}))

    answer = try_event(reader, ORDERS, {"version": "draft", "event": {"event_type": "order.placed"}}, status=400)

    assert answer["errors"] == {"transitions[2].to": ["Unknown state key 'pakced'."]}
    assert answer["detail"].startswith("The draft of model 'order-fulfilment' is invalid")
    # The published version is still there to try
    assert try_event(reader, ORDERS, {"version": 1, "event": {"event_type": "order.placed"}})["outcome"] == "created"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"state": "shiped", "event": {"event_type": "x"}},
            {
                "state": [
                    "'shiped' is not a state of version 1 of 'order-fulfilment' (its states: received, paid, "
                    "packed, shipped, delivered, on_hold, cancelled)"
                ]
            },
        ),
        ({"state": "", "event": {"event_type": "x"}}, {"state": ["This field may not be blank."]}),
        (
            {"event": {"event_type": "x", "occurred_at": "yesterday"}},
            {"event.occurred_at": ["must be an RFC 3339 time with a UTC offset"]},
        ),
        ({"event": {"data": {}}}, {"event.event_type": ["required"]}),
        ({"event": {"event_type": 7}}, {"event.event_type": ["must be a string"]}),
        (
            {"event": {"event_type": "x", "model_id": "claim"}},
            {"event.model_id": ["must be 'order-fulfilment', the model of the URL, or left out"]},
        ),
        (
            {"event": {"specversion": "1.0", "type": "x", "modelid": "claim"}},
            {"event.modelid": ["must be 'order-fulfilment', the model of the URL, or left out"]},
        ),
        ({"event": {"event_type": "x", "data": [1]}}, {"event.data": ["must be a JSON object"]}),
        ({"event": "order.placed"}, {"event": ['Expected a dictionary of items but got type "str".']}),
        ({}, {"event": ["This field is required."]}),
        (
            {"context": {"a": 1}, "event": {"event_type": "x"}},
            {"context": ["an instance that does not exist yet has no context: give a state, or no context"]},
        ),
        (
            {"version": 0, "event": {"event_type": "x"}},
            {"version": ['Must be a version number (1 or more) or "draft".']},
        ),
        (
            {"version": "2", "event": {"event_type": "x"}},
            {"version": ['Must be a version number (1 or more) or "draft".']},
        ),
        (
            {"version": True, "event": {"event_type": "x"}},
            {"version": ['Must be a version number (1 or more) or "draft".']},
        ),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(example_model, reader, body, errors):
    answer = try_event(reader, ORDERS, body, status=400)

    assert answer["errors"] == errors
    assert answer["detail"]


@pytest.mark.parametrize("body", [[{"event": {"event_type": "x"}}], "x", None])
def test_a_body_that_is_not_an_object_is_a_400_of_the_request_as_a_whole(example_model, reader, body):
    response = reader.post(f"/api/v1/models/{ORDERS}/try", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The body must be a JSON object.",
        "errors": {"": ["The body must be a JSON object."]},
    }


def test_state_and_event_errors_come_together(example_model, reader):
    answer = try_event(reader, ORDERS, {"state": "nowhere", "event": {"event_type": ""}}, status=400)

    assert set(answer["errors"]) == {"state", "event.event_type"}
    assert answer["detail"].startswith("state: 'nowhere' is not a state of version 1")


@pytest.mark.parametrize(
    ("model_id", "version", "detail"),
    [
        ("no-such-model", 1, "No version 1 of model 'no-such-model'."),
        ("no-such-model", "draft", "No model 'no-such-model'."),
        (ORDERS, 2, "No version 2 of model 'order-fulfilment'."),
    ],
)
def test_what_does_not_exist_is_a_404(example_model, reader, model_id, version, detail):
    answer = try_event(reader, model_id, {"version": version, "event": {"event_type": "x"}}, status=404)

    assert answer == {"detail": detail}


def test_a_float_version_number_is_read_as_the_number(example_model, reader):
    assert try_event(reader, ORDERS, {"version": 1.0, "event": {"event_type": "order.placed"}})["version"] == 1


def test_an_earlier_version_is_tried_as_it_was(example_model, reader):
    document = dict(example_model.document, start_events=["order.placed", "payment.captured"])
    model_import(document=document)
    body = {"event": {"event_type": "payment.captured"}}

    assert try_event(reader, ORDERS, {**body, "version": 1})["outcome"] == "parked"
    assert try_event(reader, ORDERS, body)["version"] == 2
    assert try_event(reader, ORDERS, body)["outcome"] == "created"


def test_reader_scope(example_model, api_client):
    body = {"event": {"event_type": "order.placed"}}
    anonymous = api_client(read=True)
    anonymous.credentials()

    assert anonymous.post(f"/api/v1/models/{ORDERS}/try", body, format="json").status_code == 401
    producer = api_client(produce=True).post(f"/api/v1/models/{ORDERS}/try", body, format="json")
    assert producer.status_code == 403
    assert producer.json() == {"detail": "This token does not have the reader scope (may read instances and models)."}
    assert api_client(read=True).get(f"/api/v1/models/{ORDERS}/try").status_code == 405


def test_nothing_is_written(example_model, reader):
    # Given a real instance with an event applied and one parked
    instance = instance_in(ORDERS, "ORD-W", "paid", {"carrier": "DHL"})
    ingest_and_apply(order_event("w-parked", "ORD-W", "carrier.picked_up"))
    reader.get("/api/v1/models")  # the token's last use is recorded once; not the subject here

    def snapshot():
        return (
            list(ProcessInstance.objects.order_by("pk").values()),
            list(InboxEvent.objects.order_by("pk").values()),
            list(TransitionRecord.objects.order_by("pk").values()),
            DeadLetter.objects.count(),
        )

    before = snapshot()
    with CaptureQueriesContext(connection) as queries:
        # Events of that very transaction, one that would create another, one that is invalid
        for event in [
            order_event("w-new", "ORD-W", "warehouse.packed"),
            order_event("w-parked", "ORD-W", "carrier.picked_up"),
            order_event("w-other", "ORD-NEW", "order.placed"),
        ]:
            state = None if event["transaction_id"] == "ORD-NEW" else "paid"
            try_event(reader, ORDERS, {"state": state, "context": {} if state is None else {"a": 1}, "event": event})
        try_event(reader, ORDERS, {"event": {"event_type": "x", "occurred_at": "never"}}, status=400)
        try_event(reader, ORDERS, {"version": "draft", "state": "paid", "event": {"event_type": "warehouse.packed"}})

    assert snapshot() == before
    writes = [q["sql"] for q in queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.IGNORECASE)]
    assert writes == []
    assert instance.events.filter(status=EventStatus.PARKED).count() == 1
