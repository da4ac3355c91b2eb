""" "Try it" on its own (tracking.apply.trial): every outcome of the spec's "What happens to an event",
with no database. The endpoint's tests compare the same answers with what workers do
(tests/tracking/test_api_try.py)."""

from __future__ import annotations

import copy

import pytest
import yaml

import tests.rogue_handlers  # noqa: F401 - registers "puppet", a handler that may propose undeclared moves
from models_registry.definition import Definition
from models_registry.handlers import register_handler
from models_registry.validation import document_validate
from tests.conftest import EXAMPLES
from tests.models_registry.test_handlers import event
from tracking.apply.engine import Step
from tracking.apply.trial import APPLIED, CREATED, FAILED, IGNORED, PARKED, event_try

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())


@register_handler("trial_explodes")
def _explodes(definition, state, context, event):
    """Raises for every event: a business's handler with a bug."""
    raise RuntimeError("the business's handler has a bug")


def definition(document: dict = EXAMPLE, **changes) -> Definition:
    return Definition.from_document(document_validate({**copy.deepcopy(document), **changes}))


def attempt(state: str, event_type: str, *, context=None, model: Definition | None = None, **data):
    return event_try(
        definition=model or definition(), state=state, context=context or {}, envelope=event(event_type, **data)
    )


def test_a_start_event_creates_the_instance():
    trial = attempt("", "order.placed")

    assert (trial.outcome, trial.from_state, trial.to_state) == (CREATED, None, "received")
    assert trial.steps == [Step(1, "", "received")]
    assert (trial.context_updates, trial.context, trial.waits_for) == ({}, {}, [])


def test_a_creation_also_takes_a_transition_from_the_initial_state():
    # Any event type may start this model, and payment.captured leaves the initial state.
    model = definition(start_events=[])

    trial = attempt("", "payment.captured", model=model)

    assert (trial.outcome, trial.to_state) == (CREATED, "paid")
    assert [(s.from_state, s.to_state) for s in trial.steps] == [("", "received"), ("received", "paid")]


def test_an_applied_transition_reports_what_set_stores_and_the_resulting_context():
    trial = attempt("packed", "carrier.picked_up", context={"note": "fragile"}, carrier="DHL")

    assert (trial.outcome, trial.from_state, trial.to_state) == (APPLIED, "packed", "shipped")
    # A field the event lacks is stored as null, as workers store it.
    assert trial.context_updates == {"carrier": "DHL", "tracking_number": None}
    assert trial.context == {"note": "fragile", "carrier": "DHL", "tracking_number": None}


def test_context_updates_include_a_value_equal_to_the_one_held():
    trial = attempt("packed", "carrier.picked_up", context={"carrier": "DHL"}, carrier="DHL", tracking_number="T1")

    assert trial.context_updates == {"carrier": "DHL", "tracking_number": "T1"}


def test_when_false_does_not_apply():
    trial = attempt("received", "order.cancelled")

    assert (trial.outcome, trial.to_state, trial.steps) == (IGNORED, "received", [])
    assert attempt("received", "order.cancelled", reason="changed mind").to_state == "cancelled"


def test_an_event_for_a_later_state_is_parked_and_says_what_it_waits_for():
    trial = attempt("received", "carrier.picked_up", context={"a": 1})

    assert (trial.outcome, trial.to_state, trial.context) == (PARKED, "received", {"a": 1})
    assert "waits for" in trial.reason
    assert trial.waits_for == ["packed"]


def test_before_the_instance_exists_a_non_start_event_is_parked():
    trial = attempt("", "payment.captured")

    assert (trial.outcome, trial.from_state, trial.to_state) == (PARKED, None, None)
    assert trial.reason == "no instance yet and this event type cannot start one"
    # Both sources of payment.captured can be reached from the initial state, itself included.
    assert trial.waits_for == ["received", "on_hold"]


@pytest.mark.parametrize(
    ("state", "event_type", "reason"),
    [
        ("delivered", "carrier.delivered", "instance is in terminal state 'delivered'"),
        ("paid", "no.such.type", "no transition for 'no.such.type'"),
        ("shipped", "payment.captured", "no transition for 'payment.captured' applies from 'shipped' or later"),
    ],
)
def test_ignored(state, event_type, reason):
    trial = attempt(state, event_type)

    assert (trial.outcome, trial.reason, trial.to_state, trial.waits_for) == (IGNORED, reason, state, [])


def test_a_handler_that_raises_fails_the_event():
    trial = attempt("paid", "warehouse.packed", model=definition(handler="trial_explodes"))

    assert (trial.outcome, trial.to_state) == (FAILED, "paid")
    assert trial.reason == "RuntimeError: the business's handler has a bug"


def test_a_move_the_model_does_not_declare_fails_the_event():
    # The workers' django-fsm transition refuses it; so does the trial.
    trial = attempt("received", "warehouse.packed", model=definition(handler="puppet"), move_to="delivered")

    assert (trial.outcome, trial.to_state) == (FAILED, "received")
    assert "does not declare" in trial.reason


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="not a state"):
        attempt("nowhere", "order.placed")
