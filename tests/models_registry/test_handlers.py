"""Transition handlers as pure functions, and the engine + ``declarative`` against the spec replay."""

from __future__ import annotations

import copy
from collections import defaultdict
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models_registry import handlers
from models_registry.definition import Definition
from models_registry.handlers import (
    APPLY,
    IGNORE,
    PARK,
    Decision,
    HandlerInfo,
    declarative,
    forward_only,
    get_handler,
    handler_catalogue,
    handler_names,
    register_handler,
)
from models_registry.validation import document_validate
from tests.conftest import EXAMPLES
from tests.reference_replay import replay
from tests.strategies import batch_splits, event_streams, status_model_documents
from tracking.apply import engine
from tracking.arrival.envelope import decode, parse


def example_definition(name: str) -> Definition:
    return Definition.from_document(document_validate(yaml.safe_load((EXAMPLES / name).read_text())))


ORDERS = example_definition("order-fulfilment.yaml")
PARCELS = example_definition("parcel-delivery.yaml")


def event(event_type: str, **data) -> dict:
    return {
        "event_id": "e-1",
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-1",
        "event_type": event_type,
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": "test",
        "data": data,
    }


def decide(handler, definition: Definition, state: str, envelope: dict, context: dict | None = None) -> Decision:
    """Call a handler and check that it is pure: its inputs are left as they were."""
    context = context if context is not None else {"kept": 1}
    before = copy.deepcopy((context, envelope, definition.document))
    decision = handler(definition, state, context, envelope)
    assert (context, envelope, definition.document) == before
    return decision


# --- declarative ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "envelope", "outcome", "target"),
    [
        # the first entry that leaves the current state and whose when holds
        ("received", event("payment.captured"), APPLY, "paid"),
        ("on_hold", event("payment.captured"), APPLY, "paid"),
        ("received", event("payment.failed"), APPLY, "on_hold"),
        # an entry leaves a state the instance can still reach: wait for it
        ("received", event("warehouse.packed"), PARK, None),
        ("received", event("carrier.delivered"), PARK, None),
        ("on_hold", event("carrier.picked_up"), PARK, None),
        # stale: the state it leaves is behind
        ("shipped", event("payment.captured"), IGNORE, None),
        ("packed", event("warehouse.packed"), IGNORE, None),
        ("shipped", event("payment.failed"), IGNORE, None),
        # no entry for the event type
        ("received", event("order.placed"), IGNORE, None),
        ("received", event("no.such.type"), IGNORE, None),
        # terminal states ignore everything
        ("delivered", event("payment.captured"), IGNORE, None),
        ("cancelled", event("order.cancelled", reason="again"), IGNORE, None),
        # when: JMESPath on the envelope; null is false, "" is not null
        ("on_hold", event("order.cancelled"), IGNORE, None),
        ("on_hold", event("order.cancelled", reason="fraud"), APPLY, "cancelled"),
        ("paid", event("order.cancelled", reason=""), APPLY, "cancelled"),
        # a when that is false is not a reason to park either
        ("packed", event("order.cancelled"), IGNORE, None),
        ("packed", event("order.cancelled", reason="late"), IGNORE, None),
    ],
)
def test_declarative_decisions(state, envelope, outcome, target):
    decision = decide(declarative, ORDERS, state, envelope)

    assert (decision.outcome, decision.target) == (outcome, target)
    if outcome != APPLY:
        assert decision.reason


def test_declarative_set_reads_the_envelope_and_missing_values_are_null():
    decision = decide(declarative, ORDERS, "packed", event("carrier.picked_up", carrier="DHL"))

    assert decision == Decision(APPLY, target="shipped", context_updates={"carrier": "DHL", "tracking_number": None})


def small_model(**changes) -> Definition:
    document = {
        "id": "small",
        "name": "Small",
        "initial_state": "a",
        "states": [
            {"key": "a", "label": "A"},
            {"key": "b", "label": "B"},
            {"key": "hold", "label": "Hold", "kind": "exception"},
            {"key": "done", "label": "Done", "kind": "success"},
        ],
        "transitions": [
            {"event": "go", "from": ["a"], "to": "b", "when": "data.n", "set": {"n": "data.n", "who": "source"}},
            {"event": "go", "from": ["a"], "to": "hold"},
            {"event": "hold", "from": "*", "to": "hold"},
            {"event": "finish", "from": ["b", "hold"], "to": "done"},
        ],
        **changes,
    }
    return Definition.from_document(document_validate(document))


@pytest.mark.parametrize(
    ("data", "target"),
    [
        ({"n": 0}, "b"),  # 0 is true in JMESPath
        ({"n": 5}, "b"),
        ({"n": False}, "hold"),
        ({"n": ""}, "hold"),
        ({"n": []}, "hold"),
        ({"n": {}}, "hold"),
        ({"n": None}, "hold"),
        ({}, "hold"),
        ({"n": [0]}, "b"),
        ({"n": "0"}, "b"),
    ],
)
def test_when_uses_jmespath_truthiness_and_the_first_matching_entry_wins(data, target):
    decision = decide(declarative, small_model(), "a", event("go", **data))

    assert (decision.outcome, decision.target) == (APPLY, target)
    if target == "b":
        assert decision.context_updates == {"n": data["n"], "who": "test"}
    else:
        assert decision.context_updates == {}


def test_any_state_means_every_non_terminal_state():
    definition = small_model()

    for state in ("a", "b", "hold"):
        assert decide(declarative, definition, state, event("hold")) == Decision(APPLY, target="hold")
    assert decide(declarative, definition, "done", event("hold")).outcome == IGNORE


def test_an_exception_state_can_be_left_and_parks_what_comes_after_it():
    definition = small_model()

    assert decide(declarative, definition, "hold", event("finish")) == Decision(APPLY, target="done")
    assert decide(declarative, definition, "a", event("finish")).outcome == PARK
    assert decide(declarative, definition, "b", event("go", n=1)).outcome == IGNORE


def test_the_engine_refuses_a_decision_for_a_state_the_model_does_not_have():
    def confused(definition, state, context, event):
        return Decision(APPLY, target="nowhere")

    with pytest.raises(ValueError, match="'nowhere', which is not a state"):
        engine.run(
            definition=ORDERS,
            handler=confused,
            state="received",
            context={},
            events=[engine.OpenEvent(1, event("payment.captured"))],
        )


def test_an_expression_that_fails_on_an_event_is_null():
    definition = small_model(
        transitions=[
            {"event": "go", "from": ["a"], "to": "b", "when": "contains(data.tags, 'x')"},
            {"event": "go", "from": ["a"], "to": "hold", "set": {"size": "length(data.tags)", "n": "data.n"}},
            {"event": "finish", "from": ["b", "hold"], "to": "done"},
        ]
    )

    assert decide(declarative, definition, "a", event("go", tags=["x"])) == Decision(APPLY, target="b")
    assert decide(declarative, definition, "a", event("go", n=2)) == Decision(
        APPLY, target="hold", context_updates={"size": None, "n": 2}
    )


# --- forward_only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "event_type", "outcome", "target"),
    [
        ("announced", "parcel.scanned", APPLY, "in_transit"),
        ("announced", "parcel.out_for_delivery", APPLY, "out_for_delivery"),  # skips a step
        ("out_for_delivery", "parcel.scanned", IGNORE, None),  # a late scan never moves back
        ("in_transit", "parcel.scanned", IGNORE, None),  # not after the current state
        ("in_transit", "parcel.delivered", APPLY, "delivered"),
        ("in_transit", "parcel.returned", APPLY, "returned"),
        ("out_for_delivery", "parcel.attempt_failed", APPLY, "delivery_failed"),
        ("announced", "parcel.attempt_failed", APPLY, "delivery_failed"),  # from lists are not consulted
        ("delivery_failed", "parcel.out_for_delivery", APPLY, "out_for_delivery"),  # the exception is left
        ("delivery_failed", "parcel.scanned", APPLY, "in_transit"),
        ("delivery_failed", "parcel.attempt_failed", IGNORE, None),
        ("delivered", "parcel.returned", IGNORE, None),  # terminal
        ("returned", "parcel.scanned", IGNORE, None),
        ("announced", "parcel.announced", IGNORE, None),  # no entry for it
        ("announced", "unknown", IGNORE, None),
    ],
)
def test_forward_only_decisions(state, event_type, outcome, target):
    decision = decide(forward_only, PARCELS, state, event(event_type))

    assert (decision.outcome, decision.target) == (outcome, target)
    assert decision.outcome != PARK


def test_forward_only_sets_context_and_respects_when():
    definition = Definition.from_document(
        document_validate(
            {
                **PARCELS.document,
                "transitions": [
                    {"event": "parcel.delivered", "from": "*", "to": "delivered", "when": "data.signed_by"},
                    {"event": "parcel.delivered", "from": "*", "to": "delivery_failed"},
                    *PARCELS.document["transitions"],
                ],
            }
        )
    )

    signed = decide(forward_only, definition, "in_transit", event("parcel.delivered", signed_by="R. Roe"))
    unsigned = decide(forward_only, definition, "in_transit", event("parcel.delivered", signed_by=""))

    assert signed == Decision(APPLY, target="delivered", context_updates={})
    assert unsigned == Decision(APPLY, target="delivery_failed", context_updates={})
    assert decide(forward_only, PARCELS, "in_transit", event("parcel.delivered", signed_by="X")).context_updates == {
        "signed_by": "X"
    }


# --- the engine with ``declarative`` against the plain replay of the spec -----------------------


def engine_replay(document: dict, batches: list[list[dict]]) -> dict[str, dict]:
    """Feed the engine as the service does: dedupe by event id, then per batch run each instance
    that has new events over its open (pending and still parked) events in arrival order."""
    definition = Definition.from_document(document_validate(document))
    handler = get_handler(definition.document["handler"])
    instances: dict[str, dict] = defaultdict(
        lambda: {"state": "", "context": {}, "outcomes": {}, "history": [], "open": {}}
    )
    event_ids: dict[int, str] = {}
    seen: set[str] = set()
    for batch in batches:
        touched = []
        for envelope in batch:
            if envelope["event_id"] in seen:
                continue
            seen.add(envelope["event_id"])
            key = len(event_ids)
            event_ids[key] = envelope["event_id"]
            instance = instances[envelope["transaction_id"]]
            instance["open"][key] = (envelope, False)
            touched.append(instance)
        for instance in {id(i): i for i in touched}.values():
            result = engine.run(
                definition=definition,
                handler=handler,
                state=instance["state"],
                context=instance["context"],
                events=[engine.OpenEvent(key, env, parked) for key, (env, parked) in instance["open"].items()],
            )
            instance["state"], instance["context"] = result.state, result.context
            instance["history"] += [(s.from_state or None, s.to_state, event_ids[s.event_key]) for s in result.steps]
            for key, (status, _reason) in result.outcomes.items():
                instance["outcomes"][event_ids[key]] = status
                envelope = instance["open"].pop(key)[0]
                if status == engine.PARKED:
                    instance["open"][key] = (envelope, True)
    return {
        transaction_id: {
            "state": instance["state"] or None,
            "context": instance["context"],
            "outcomes": instance["outcomes"],
            "history": instance["history"],
        }
        for transaction_id, instance in instances.items()
    }


def without_duplicates(expected: dict) -> dict:
    return {txn: {k: v for k, v in result.items() if k != "duplicates"} for txn, result in expected.items()}


@st.composite
def models_and_batches(draw):
    document = draw(status_model_documents(model_id="m"))
    envelopes = draw(event_streams(model_id="m", prefix=""))
    return document, envelopes, draw(batch_splits(envelopes))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models_and_batches())
def test_engine_with_declarative_agrees_with_the_spec_replay(case):
    document, envelopes, batches = case

    expected = without_duplicates(replay(document, envelopes))
    actual = engine_replay(document, batches)

    assert actual == expected


def test_engine_replay_of_the_example_stream_matches_the_readme():
    document = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())
    received_at = datetime(2026, 11, 26, 13, tzinfo=UTC)
    envelopes = []
    for raw in (EXAMPLES / "order-fulfilment-events.jsonl").read_bytes().splitlines():
        parsed = parse(decode(raw))
        if parsed.model_id == document["id"]:
            envelopes.append(parsed.as_document(received_at=received_at))

    result = engine_replay(document, [envelopes])

    assert {txn: r["state"] for txn, r in result.items()} == {
        "ORD-1001": "shipped",
        "ORD-1002": "packed",
        "ORD-1003": "on_hold",
    }
    assert result["ORD-1001"]["context"] == {"carrier": "DHL", "tracking_number": "JD0142"}
    assert result["ORD-1002"]["history"] == [
        (None, "received", "shop-2"),
        ("received", "paid", "bill-2"),
        ("paid", "packed", "wms-9"),
    ]
    assert result["ORD-1003"]["outcomes"]["shop-4"] == "ignored"
    assert result == without_duplicates(replay(document, envelopes))


# --- the registry's catalogue: what the designer and GET /api/v1/handlers show -----------------------


@pytest.fixture
def registry(monkeypatch):
    """Handlers registered in a test are forgotten after it."""
    for name in ("_HANDLERS", "_IGNORES_SOURCES", "_DESCRIPTIONS", "_READS"):
        monkeypatch.setattr(handlers, name, copy.copy(getattr(handlers, name)))


def loan_scoring(definition, state, context, event):
    """Approves a loan whose score clears the model's
    threshold, and declines the others.

    Details for developers, not shown to the people choosing a handler.
    """
    return declarative(definition, state, context, event)


def test_a_registration_describes_the_handler_by_its_docstring_and_declares_what_it_reads(registry):
    register_handler("loan_scoring", reads={"loan.scored": ["score", "limit", "score"], "loan.withdrawn": []})(
        loan_scoring
    )

    [info] = [info for info in handler_catalogue() if info.name == "loan_scoring"]

    assert info == HandlerInfo(
        name="loan_scoring",
        description="Approves a loan whose score clears the model's threshold, and declines the others.",
        reads={"loan.scored": ["score", "limit"], "loan.withdrawn": []},
    )


def test_a_registration_may_say_its_description_and_defaults_to_none(registry):
    register_handler("said", description="Said in the registration.", reads={"*": ("applicant.id",)})(loan_scoring)
    register_handler("undocumented")(
        lambda definition, state, context, event: declarative(definition, state, context, event)
    )

    catalogue = {info.name: info for info in handler_catalogue()}

    assert catalogue["said"] == HandlerInfo("said", "Said in the registration.", {"*": ["applicant.id"]})
    assert catalogue["undocumented"] == HandlerInfo("undocumented", "", {})


@pytest.mark.parametrize(
    ("reads", "complaint"),
    [
        ({"loan.scored": "score"}, r"reads\['loan.scored'\] must be a list of data field names"),
        ({"loan.scored": ["score", ""]}, r"reads\['loan.scored'\] must be a list"),
        ({"loan.scored": 3}, r"reads\['loan.scored'\] must be a list"),
        ({"": ["score"]}, "an event type in reads must be a non-empty string"),
        (["loan.scored"], "reads must map event types to lists of data fields"),
    ],
)
def test_a_malformed_declaration_is_refused_when_the_module_is_imported(registry, reads, complaint):
    with pytest.raises(TypeError, match=complaint):
        register_handler("loan_scoring", reads=reads)

    assert "loan_scoring" not in handler_names()


def test_the_catalogue_lists_every_handler_by_name_and_cannot_be_changed_through_it(registry):
    register_handler("a_first", reads={"x": ["y"]})(loan_scoring)

    catalogue = handler_catalogue()
    catalogue[0].reads["x"].append("z")

    assert [info.name for info in catalogue] == handler_names()
    assert handler_catalogue()[0].reads == {"x": ["y"]}


def test_the_shipped_and_the_projects_own_handlers_are_described():
    import tests.failing_handlers  # noqa: F401 - registers explodes_until_fixed and jumps_ahead
    import tests.gated_handler  # noqa: F401 - registers gated and failing_for_x
    import tests.rogue_handlers  # noqa: F401 - registers puppet and puppet_ignoring_sources

    catalogue = {info.name: info for info in handler_catalogue()}

    assert catalogue["declarative"].description.startswith("The model's transition table, as the spec says: ")
    assert "parked" in catalogue["declarative"].description
    assert catalogue["forward_only"].description.startswith("Furthest step wins, for sources that report out of")
    assert catalogue["declarative"].reads == catalogue["forward_only"].reads == {}
    assert catalogue["jumps_ahead"].reads == {"*": ["jump"]}
    assert catalogue["puppet_ignoring_sources"].reads == {"*": ["move_to"]}
    undescribed = [name for name, info in catalogue.items() if not info.description]
    assert undescribed == []
