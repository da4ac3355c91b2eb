"""django-fsm carries the guarantees: no service stores a state outside the instance's version, or a
move its definition does not allow; an operator's manual move and a version migration are the
declared exceptions, each with rules of its own; the bulk write stores only states that came out
of a transition."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.utils import timezone
from django_fsm import TransitionNotAllowed

import tests.rogue_handlers  # noqa: F401 - registers the "puppet" handlers the models below name
from models_registry.models import ModelVersion
from models_registry.services import model_import
from tests.conftest import EXAMPLES, load_example_model
from tests.events import ingest, order_event
from tracking.apply.applier import ApplyBatch, ApplyReport, instances_apply_pending
from tracking.models import EventStatus, InboxEvent, ProcessInstance, TransitionRecord
from tracking.operations.moves import instance_move_manually, instances_migrate_version

pytestmark = pytest.mark.django_db

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())
STATES = [state["key"] for state in EXAMPLE["states"]]
EVENT_TYPES = sorted({t["event"] for t in EXAMPLE["transitions"]} | set(EXAMPLE["start_events"]))


def apply_all() -> ApplyReport:
    return instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def instance(transaction_id: str) -> ProcessInstance:
    return ProcessInstance.objects.get(transaction_id=transaction_id)


def event_status(event_id: str) -> str:
    return InboxEvent.objects.get(event_id=event_id).status


def history(transaction_id: str) -> list[tuple[str, str]]:
    return list(
        TransitionRecord.objects.filter(instance__transaction_id=transaction_id)
        .order_by("id")
        .values_list("from_state", "to_state")
    )


def puppet_model(handler: str) -> str:
    """The example model under a handler that applies whatever target an event's data names."""
    model_id = f"{handler.replace('_', '-')}-orders"
    model_import(document={**copy.deepcopy(EXAMPLE), "id": model_id, "handler": handler})
    return model_id


def declared(source: str, event_type: str, target: str, *, follows_sources: bool) -> bool:
    """Whether the example document allows this event's move, read from the YAML itself (not
    from the code under test): a non-terminal source, a transition of that event type into the
    target, and, for a handler that follows sources, one whose ``from`` lists the source."""
    kinds = {state["key"]: state.get("kind", "step") for state in EXAMPLE["states"]}
    if kinds[source] in ("success", "failure"):
        return False
    return any(
        t["event"] == event_type
        and t["to"] == target
        and (not follows_sources or t["from"] == "*" or source in t["from"])
        for t in EXAMPLE["transitions"]
    )


@pytest.fixture
def parcel_version(db) -> ModelVersion:
    """A version of another model (it shares the state key "delivered" with the example)."""
    return load_example_model("parcel-delivery.yaml")


@pytest.fixture
def version_two(example_model) -> ModelVersion:
    """Version 2 of the example: "on_hold" is renamed "payment_problem"."""
    document = copy.deepcopy(example_model.document)
    document["states"] = [s for s in document["states"] if s["key"] != "on_hold"] + [
        {"key": "payment_problem", "label": "Payment problem", "kind": "exception"}
    ]
    document["transitions"] = [
        {**t, "from": [("payment_problem" if s == "on_hold" else s) for s in t["from"]]}
        | ({"to": "payment_problem"} if t["to"] == "on_hold" else {})
        for t in document["transitions"]
    ]
    version, _ = model_import(document=document)
    assert version.number == 2
    return version


@pytest.fixture
def received_order(example_model) -> ProcessInstance:
    """Order A, started: in "received", pinned to version 1."""
    ingest(order_event("a1", "A", "order.placed"))
    apply_all()
    started = instance("A")
    assert (started.state, started.version_id) == ("received", example_model.pk)
    return started


@pytest.fixture
def waiting_order(example_model) -> ProcessInstance:
    """Order A's row reserved by an event that cannot start it: state "", no version."""
    ingest(order_event("a1", "A", "payment.captured"))
    apply_all()
    waiting = instance("A")
    assert (waiting.state, waiting.version_id, waiting.status) == ("", None, "waiting")
    return waiting


# --- an event's move: what a handler proposes ------------------------------------------------------


@pytest.mark.parametrize(
    ("move_to", "errors"),
    [
        # The engine refuses it before the transition does (which would: see the direct tests below)
        pytest.param("teleported", ("not a state of", "TransitionNotAllowed"), id="a-state-the-model-lacks"),
        # "shipped" is a state, but only carrier.picked_up leads there: the transition alone refuses
        pytest.param("shipped", ("TransitionNotAllowed",), id="a-state-no-transition-of-the-event-type-targets"),
    ],
)
def test_a_handler_choosing_an_undeclared_target_is_refused_and_the_other_instances_apply(move_to, errors):
    # Given a model whose handler does what an event's data says, and order A started
    model_id = puppet_model("puppet")
    ingest(order_event("a1", "A", "order.placed", model_id))
    apply_all()

    # When, in one call, A's payment.captured asks for that target and order B's events are normal
    ingest(
        order_event("a2", "A", "payment.captured", model_id, move_to=move_to),
        order_event("b1", "B", "order.placed", model_id),
        order_event("b2", "B", "payment.captured", model_id),
    )
    report = apply_all()

    # Then A is not written: still received, its event pending, named in the report with why
    a, b = instance("A"), instance("B")
    assert list(report.failed) == [a.pk]
    assert any(error in report.failed[a.pk] for error in errors), report.failed
    assert (a.state, a.status) == ("received", "active")
    assert event_status("a2") == EventStatus.PENDING
    assert history("A") == [("", "received")]
    # And B applied in the same call
    assert (b.state, b.status) == ("paid", "active")
    assert (event_status("b1"), event_status("b2")) == (EventStatus.APPLIED, EventStatus.APPLIED)
    assert history("B") == [("", "received"), ("received", "paid")]
    assert report.decided == 2


def test_a_declared_move_whose_when_does_not_hold_is_refused():
    # Given order A in "received"; order.cancelled leads to "cancelled" only "when: data.reason != null"
    model_id = puppet_model("puppet")
    ingest(order_event("a1", "A", "order.placed", model_id))
    apply_all()

    # When a handler moves A to "cancelled" on an order.cancelled without a reason
    ingest(order_event("a2", "A", "order.cancelled", model_id, move_to="cancelled"))
    report = apply_all()

    # Then the move is refused and nothing is written
    assert "TransitionNotAllowed" in report.failed[instance("A").pk]
    assert instance("A").state == "received"
    assert event_status("a2") == EventStatus.PENDING


def test_a_declared_target_from_a_state_its_transition_does_not_leave_is_refused():
    # Given order A in "received" (warehouse.packed leads to "packed" only from "paid")
    model_id = puppet_model("puppet")
    ingest(order_event("a1", "A", "order.placed", model_id))
    apply_all()

    # When a handler that follows the transitions' sources moves A to "packed" on warehouse.packed,
    # while order B is started in the same call
    ingest(
        order_event("a2", "A", "warehouse.packed", model_id, move_to="packed"),
        order_event("b1", "B", "order.placed", model_id),
    )
    report = apply_all()

    # Then A is refused and not written; B applies
    assert list(report.failed) == [instance("A").pk]
    assert "TransitionNotAllowed" in report.failed[instance("A").pk]
    assert instance("A").state == "received"
    assert event_status("a2") == EventStatus.PENDING
    assert instance("B").state == "received"
    assert event_status("b1") == EventStatus.APPLIED


def test_the_same_move_by_a_handler_that_does_not_follow_sources_is_allowed():
    # Given order A in "received", under a handler registered with follows_sources=False
    model_id = puppet_model("puppet_ignoring_sources")
    ingest(order_event("a1", "A", "order.placed", model_id))
    apply_all()

    # When it moves A to "packed" on warehouse.packed, a transition declared only from "paid"
    ingest(order_event("a2", "A", "warehouse.packed", model_id, move_to="packed"))
    report = apply_all()

    # Then the move is stored and recorded: the declared target is all such a handler needs
    assert report.failed == {}
    assert (instance("A").state, instance("A").status) == ("packed", "active")
    assert event_status("a2") == EventStatus.APPLIED
    assert history("A") == [("", "received"), ("received", "packed")]


def test_no_handler_moves_an_instance_out_of_a_terminal_state():
    # Given order A cancelled, under a handler that ignores the transitions' sources
    model_id = puppet_model("puppet_ignoring_sources")
    ingest(
        order_event("a1", "A", "order.placed", model_id),
        order_event("a2", "A", "order.cancelled", model_id, reason="customer asked"),
    )
    apply_all()
    assert instance("A").state == "cancelled"

    # When its handler applies payment.captured's declared target "paid"
    ingest(order_event("a3", "A", "payment.captured", model_id, move_to="paid"))
    report = apply_all()

    # Then the move is refused: a terminal state is left by no event
    assert list(report.failed) == [instance("A").pk]
    assert (instance("A").state, instance("A").status) == ("cancelled", "failed")
    assert event_status("a3") == EventStatus.PENDING


@pytest.mark.parametrize(
    ("handler", "follows_sources", "declared_moves"),
    [("puppet", True, 9), ("puppet_ignoring_sources", False, 30)],
)
def test_only_moves_the_definition_declares_are_stored_whatever_the_handler_proposes(
    handler, follows_sources, declared_moves
):
    # Given one instance per (source state, event type, proposed target), each put in its source
    # state by an operator's manual move
    model_id = puppet_model(handler)
    cases = {
        f"{source}|{event_type}|{target}": (source, event_type, target)
        for source in STATES
        for event_type in EVENT_TYPES
        for target in [*STATES, "teleported"]
    }
    ingest(*(order_event(f"{key}|start", key, "order.placed", model_id) for key in cases))
    apply_all()
    for key, (source, _, _) in cases.items():
        if source != "received":
            instance_move_manually(instance_id=instance(key).pk, target=source, actor=None, note="test setup")
    allowed = {key: declared(*case, follows_sources=follows_sources) for key, case in cases.items()}
    assert sum(allowed.values()) == declared_moves  # the oracle reads the document as expected

    # When each gets an event whose handler proposes that target (with a reason, so "when" holds),
    # all applied in one call
    ingest(
        *(
            order_event(f"{key}|move", key, event_type, model_id, move_to=target, reason="test")
            for key, (_, event_type, target) in cases.items()
        )
    )
    report = apply_all()

    # Then exactly the declared moves are stored; every other instance is refused and unchanged
    pks = dict(ProcessInstance.objects.values_list("transaction_id", "pk"))
    assert set(report.failed) == {pks[key] for key, ok in allowed.items() if not ok}
    states = dict(ProcessInstance.objects.values_list("transaction_id", "state"))
    moves = dict(
        InboxEvent.objects.filter(event_id__endswith="|move").values_list("instance__transaction_id", "status")
    )
    for key, (source, _, target) in cases.items():
        assert states[key] == (target if allowed[key] else source), key
        assert moves[key] == (EventStatus.APPLIED if allowed[key] else EventStatus.PENDING), key
    assert set(states.values()) <= set(STATES)


# --- creation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "initial_state", "event_type"),
    [
        pytest.param("own", "paid", "order.placed", id="into-a-state-that-is-not-initial"),
        pytest.param("own", "received", "payment.captured", id="by-an-event-that-cannot-start"),
        pytest.param("parcel", "announced", "parcel.announced", id="with-a-version-of-another-model"),
    ],
)
def test_start_refuses_what_the_version_does_not_declare(
    waiting_order, example_model, parcel_version, version, initial_state, event_type
):
    version_id = {"own": example_model.pk, "parcel": parcel_version.pk}[version]

    with pytest.raises(TransitionNotAllowed):
        waiting_order.start(version_id=version_id, initial_state=initial_state, event_type=event_type)

    assert (waiting_order.state, waiting_order.version_id) == ("", None)
    with pytest.raises(TransitionNotAllowed):
        waiting_order.bulk_write_check()


def test_start_creates_in_the_initial_state_once(waiting_order, example_model):
    waiting_order.start(version_id=example_model.pk, initial_state="received", event_type="order.placed")

    assert (waiting_order.state, waiting_order.version_id) == ("received", example_model.pk)
    waiting_order.bulk_write_check()
    # A started instance is not created again
    with pytest.raises(TransitionNotAllowed):
        waiting_order.start(version_id=example_model.pk, initial_state="received", event_type="order.placed")
    assert waiting_order.state == "received"


# --- an event's move, the transition itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "event_type", "target", "handler"),
    [
        pytest.param("received", "payment.captured", "teleported", "declarative", id="a-state-the-model-lacks"),
        pytest.param("received", "payment.captured", "shipped", "declarative", id="not-the-event-types-target"),
        pytest.param("received", "warehouse.packed", "packed", "declarative", id="a-source-not-in-from"),
        pytest.param("cancelled", "payment.captured", "paid", "forward_only", id="out-of-a-terminal-state"),
        pytest.param("received", "parcel.scanned", "in_transit", "forward_only", id="an-event-type-of-another-model"),
    ],
)
def test_the_event_transition_refuses_what_the_definition_does_not_declare(
    received_order, source, event_type, target, handler
):
    if source != received_order.state:
        received_order.move_manually(target=source)

    with pytest.raises(TransitionNotAllowed):
        received_order.apply_event(target=target, event={"event_type": event_type}, handler=handler)

    assert received_order.state == source


def test_the_event_transition_refuses_an_instance_not_started(waiting_order):
    with pytest.raises(TransitionNotAllowed):
        waiting_order.apply_event(target="received", event={"event_type": "order.placed"}, handler="forward_only")
    assert waiting_order.state == ""


# --- manual moves: any state of the pinned version --------------------------------------------------


@pytest.mark.parametrize("target", ["teleported", "payment_problem"])
def test_a_manual_move_to_a_state_the_version_lacks_is_refused(received_order, version_two, target):
    # "payment_problem" exists, but only in version 2: a manual move does not change versions

    with pytest.raises(ValueError, match="unknown state"):
        instance_move_manually(instance_id=received_order.pk, target=target, actor=None, note="typo")

    stored = instance("A")
    assert (stored.state, stored.version_id) == ("received", received_order.version_id)
    assert history("A") == [("", "received")]
    # And bypassing the service, the transition itself refuses it
    with pytest.raises(TransitionNotAllowed):
        stored.move_manually(target=target)
    assert stored.state == "received"


def test_a_manual_move_on_an_instance_not_started_is_refused(waiting_order):
    with pytest.raises(ValueError, match="not started"):
        instance_move_manually(instance_id=waiting_order.pk, target="received", actor=None, note="")

    with pytest.raises(TransitionNotAllowed):
        waiting_order.move_manually(target="received")
    assert instance("A").state == ""


@pytest.mark.parametrize(
    ("events", "source", "target", "status"),
    [
        # No transition leads from "received" to "shipped"
        pytest.param([], "received", "shipped", "active", id="a-move-no-transition-declares"),
        # No event ever leaves a terminal state; an operator may
        pytest.param(
            [order_event("a2", "A", "order.cancelled", reason="by mistake")],
            "cancelled",
            "paid",
            "active",
            id="out-of-a-terminal-state",
        ),
        pytest.param([], "received", "delivered", "succeeded", id="into-a-terminal-state"),
    ],
)
def test_a_manual_move_to_any_state_of_the_version_is_allowed_and_recorded(
    received_order, django_user_model, events, source, target, status
):
    # Given order A in the source state
    if events:
        ingest(*events)
        apply_all()
    assert instance("A").state == source
    operator = django_user_model.objects.create_user(username="operator")

    # When an operator moves it
    moved = instance_move_manually(instance_id=received_order.pk, target=target, actor=operator, note="checked")

    # Then it is stored, with who and why in the history
    stored = instance("A")
    assert (moved.state, stored.state, stored.status) == (target, target, status)
    assert stored.version_id == received_order.version_id
    record = stored.history.order_by("id").last()
    assert (record.from_state, record.to_state, record.actor, record.note, record.event) == (
        source,
        target,
        operator,
        "checked",
        None,
    )


# --- migrations: any state of another version of the same model ------------------------------------


@pytest.fixture
def order_on_hold(example_model) -> ProcessInstance:
    ingest(order_event("a1", "A", "order.placed"), order_event("a2", "A", "payment.failed"))
    apply_all()
    on_hold = instance("A")
    assert (on_hold.state, on_hold.version_id) == ("on_hold", example_model.pk)
    return on_hold


@pytest.mark.parametrize("state_mapping", [{}, {"on_hold": "nowhere"}])
def test_a_migration_to_a_state_the_target_version_lacks_is_refused(
    order_on_hold, example_model, version_two, state_mapping
):
    with pytest.raises(ValueError, match="no state in version 2 for: on_hold"):
        instances_migrate_version(instance_ids=[order_on_hold.pk], version=version_two, state_mapping=state_mapping)

    stored = instance("A")
    assert (stored.state, stored.version_id) == ("on_hold", example_model.pk)
    assert history("A") == [("", "received"), ("received", "on_hold")]
    # And bypassing the service, the transition itself refuses it
    target = state_mapping.get("on_hold", "on_hold")
    with pytest.raises(TransitionNotAllowed):
        stored.migrate(version_id=version_two.pk, target=target)
    assert (stored.state, stored.version_id) == ("on_hold", example_model.pk)


def test_a_migration_to_a_version_of_another_model_is_refused(received_order, example_model, parcel_version):
    # "delivered" is a state of both models
    with pytest.raises(ValueError, match="another model"):
        instances_migrate_version(
            instance_ids=[received_order.pk], version=parcel_version, state_mapping={"received": "delivered"}
        )

    stored = instance("A")
    assert (stored.state, stored.version_id) == ("received", example_model.pk)
    assert history("A") == [("", "received")]
    with pytest.raises(TransitionNotAllowed):
        stored.migrate(version_id=parcel_version.pk, target="delivered")
    assert (stored.state, stored.version_id) == ("received", example_model.pk)


def test_a_migration_of_an_instance_not_started_is_refused_by_the_transition(waiting_order, version_two):
    with pytest.raises(TransitionNotAllowed):
        waiting_order.migrate(version_id=version_two.pk, target="received")
    assert (waiting_order.state, waiting_order.version_id) == ("", None)


def test_a_valid_migration_is_allowed_and_recorded(order_on_hold, version_two):
    migrated = instances_migrate_version(
        instance_ids=[order_on_hold.pk], version=version_two, state_mapping={"on_hold": "payment_problem"}
    )

    assert migrated == 1
    stored = instance("A")
    assert (stored.state, stored.status, stored.version_id) == ("payment_problem", "in_exception", version_two.pk)
    record = stored.history.order_by("id").last()
    assert (record.from_state, record.to_state, record.note) == (
        "on_hold",
        "payment_problem",
        "migrated from version 1 to 2",
    )


# --- the state field and the bulk write ------------------------------------------------------------


def test_the_state_cannot_be_assigned(received_order):
    with pytest.raises(AttributeError):
        received_order.state = "paid"
    assert received_order.state == "received"


def test_the_bulk_write_stores_a_state_that_came_out_of_a_transition(received_order):
    # Given order A moved in memory by a declared transition, and its event decided
    ingest(order_event("a2", "A", "payment.captured"))
    loaded = instance("A")
    loaded.apply_event(target="paid", event={"event_type": "payment.captured"}, handler="declarative")
    event = InboxEvent.objects.get(event_id="a2")
    event.status = EventStatus.APPLIED

    batch = ApplyBatch(timezone.now())
    batch.instances.append(loaded)
    batch.events.append(event)
    batch.save()

    assert instance("A").state == "paid"
    assert event_status("a2") == EventStatus.APPLIED


def _force_after_loading(loaded: ProcessInstance) -> None:
    loaded.__dict__["state"] = "paid"


def _force_after_a_transition(loaded: ProcessInstance) -> None:
    loaded.apply_event(target="paid", event={"event_type": "payment.captured"}, handler="declarative")
    loaded.__dict__["state"] = "delivered"


def _force_outside_the_version(loaded: ProcessInstance) -> None:
    loaded.__dict__["state"] = "teleported"


def _force_another_version(loaded: ProcessInstance) -> None:
    loaded.apply_event(target="paid", event={"event_type": "payment.captured"}, handler="declarative")
    other = model_import(document={**copy.deepcopy(EXAMPLE), "id": "other-orders"})[0]
    loaded.version_id = other.pk


@pytest.mark.parametrize(
    "force", [_force_after_loading, _force_after_a_transition, _force_outside_the_version, _force_another_version]
)
def test_a_state_forced_around_the_transitions_is_not_written(received_order, force):
    # Given order A loaded, a state put into it around the FSM, and an event of it decided
    ingest(order_event("a2", "A", "payment.captured"))
    loaded = instance("A")
    force(loaded)
    event = InboxEvent.objects.get(event_id="a2")
    event.status = EventStatus.APPLIED

    # When the applier's bulk write is asked to store them
    batch = ApplyBatch(timezone.now())
    batch.instances.append(loaded)
    batch.events.append(event)
    with pytest.raises(TransitionNotAllowed):
        loaded.bulk_write_check()
    with pytest.raises(TransitionNotAllowed, match="was not set by a transition"):
        batch.save()

    # Then nothing is written: neither the instance nor the event
    assert instance("A").state == "received"
    assert event_status("a2") == EventStatus.PENDING
