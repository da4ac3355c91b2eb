"""documents_diff: what publishing changes, section by section, for valid and invalid documents."""

from __future__ import annotations

import copy

import pytest

from models_registry.designer import draft_report
from models_registry.diff import ADDED, CHANGED, REMOVED, Change, documents_diff
from models_registry.validation import document_validate

LOAN = {
    "id": "loan",
    "name": "Loan application",
    "description": "",
    "handler": "declarative",
    "initial_state": "applied",
    "start_events": ["loan.applied"],
    "park_ttl": "P7D",
    "states": [
        {"key": "applied", "label": "Applied", "kind": "step"},
        {"key": "review", "label": "In review", "kind": "step"},
        {"key": "approved", "label": "Approved", "kind": "success"},
        {"key": "declined", "label": "Declined", "kind": "failure"},
    ],
    "transitions": [
        {"event": "loan.reviewed", "from": ["applied"], "to": "review"},
        {"event": "loan.decided", "from": ["review"], "to": "approved", "when": "data.ok == `true`"},
        {"event": "loan.decided", "from": ["review"], "to": "declined", "when": "data.ok == `false`"},
    ],
    "milestones": [
        {"key": "start", "label": "Started", "states": ["applied"]},
        {"key": "check", "label": "Checking", "states": ["review"]},
    ],
    "display": [{"field": "amount", "label": "Amount"}],
}


def edited(change) -> dict:
    document = copy.deepcopy(LOAN)
    change(document)
    return document


def texts(changes: list[Change]) -> list[str]:
    return [change.text for change in changes]


def test_the_same_document_changes_nothing():
    assert documents_diff(LOAN, copy.deepcopy(LOAN)) == []


def test_model_fields_come_first_in_words():
    new = edited(lambda d: d.update(name="Loan", park_ttl="P1D", start_events=["loan.applied", "loan.created"]))
    new["states"][0]["label"] = "Application received"

    changes = documents_diff(LOAN, new)

    assert texts(changes) == [
        "name changed: 'Loan application' → 'Loan'",
        "start events changed: loan.applied → loan.applied, loan.created",
        "how long early events wait changed: 'P7D' → 'P1D'",
        "state 'applied' changed: label: 'Applied' → 'Application received'",
    ]
    assert [change.section for change in changes] == ["model", "model", "model", "states"]


def test_states_added_removed_and_changed():
    def change(d):
        d["states"][1].update(label="Under review", kind="exception", expected_within="P2D")
        d["states"].pop(3)
        d["states"].append({"key": "withdrawn", "label": "Withdrawn", "kind": "failure"})

    changes = [c for c in documents_diff(LOAN, edited(change)) if c.section == "states"]

    assert changes == [
        Change("states", REMOVED, "state 'declined'"),
        Change(
            "states",
            CHANGED,
            "state 'review'",
            ("label: 'In review' → 'Under review'", "kind: 'step' → 'exception'", "expected within: (none) → 'P2D'"),
        ),
        Change("states", ADDED, "state 'withdrawn'"),
    ]
    assert changes[0].text == "state 'declined' removed"
    assert changes[2].text == "state 'withdrawn' added"


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("from", ["applied", "review"], "from: applied → applied, review"),
        ("from", "*", "from: applied → any open state"),
        ("when", "data.fast", "condition: (none) → 'data.fast'"),
        ("set", {"officer": "data.officer"}, "context updates: (none) → officer = data.officer"),
    ],
)
def test_a_transition_whose_from_when_or_set_changes_is_changed(field, value, detail):
    new = edited(lambda d: d["transitions"][0].update({field: value}))

    assert texts(documents_diff(LOAN, new)) == [f"transition 'loan.reviewed' to 'review' changed: {detail}"]


@pytest.mark.parametrize(
    ("field", "value", "removed", "added"),
    [
        ("event", "loan.checked", "transition 'loan.reviewed' to 'review'", "transition 'loan.checked' to 'review'"),
        ("to", "declined", "transition 'loan.reviewed' to 'review'", "transition 'loan.reviewed' to 'declined'"),
    ],
)
def test_a_transition_whose_event_or_target_changes_is_removed_and_added(field, value, removed, added):
    new = edited(lambda d: d["transitions"][0].update({field: value}))

    assert documents_diff(LOAN, new) == [
        Change("transitions", REMOVED, removed),
        Change("transitions", ADDED, added),
    ]


def test_transitions_are_matched_by_event_and_target_not_by_position():
    new = edited(lambda d: d["transitions"].reverse())

    assert documents_diff(LOAN, new) == []


def test_repeated_event_and_target_pairs_are_matched_in_order():
    pair = {"event": "loan.reviewed", "from": ["review"], "to": "review", "when": "data.again"}
    old = edited(lambda d: d["transitions"].append(pair))
    # The second of the pair gets a new condition; a third is added
    new = edited(lambda d: d["transitions"].extend([{**pair, "when": "data.once_more"}, {**pair, "from": ["applied"]}]))

    assert texts(documents_diff(old, new)) == [
        "transition 'loan.reviewed' to 'review' (#2 of that kind) changed: condition: 'data.again' → 'data.once_more'",
        "transition 'loan.reviewed' to 'review' (#3 of that kind) added",
    ]
    assert texts(documents_diff(new, old)) == [
        "transition 'loan.reviewed' to 'review' (#3 of that kind) removed",
        "transition 'loan.reviewed' to 'review' (#2 of that kind) changed: condition: 'data.once_more' → 'data.again'",
    ]


def test_milestones_added_removed_and_changed():
    def change(d):
        d["milestones"][0]["states"] = ["applied", "review"]
        d["milestones"][1] = {"key": "decided", "label": "Decided", "states": ["approved", "declined"]}

    assert texts(documents_diff(LOAN, edited(change))) == [
        "milestone 'check' removed",
        "milestone 'start' changed: states: applied → applied, review",
        "milestone 'decided' added",
    ]


def test_display_fields_matched_by_field_name():
    def change(d):
        d["display"] = [{"field": "amount", "label": "Loan amount"}, {"field": "officer", "label": "Officer"}]

    assert texts(documents_diff(LOAN, edited(change))) == [
        "display field 'amount' changed: label: 'Amount' → 'Loan amount'",
        "display field 'officer' added",
    ]
    assert texts(documents_diff(LOAN, edited(lambda d: d.update(display=[])))) == ["display field 'amount' removed"]


def test_without_an_old_document_everything_is_new():
    changes = documents_diff(None, LOAN)

    assert {(c.section, c.kind) for c in changes} == {
        ("model", CHANGED),
        ("states", ADDED),
        ("transitions", ADDED),
        ("milestones", ADDED),
        ("display", ADDED),
    }
    assert "name changed: (none) → 'Loan application'" in texts(changes)
    assert "transition 'loan.decided' to 'declined' added" in texts(changes)
    assert len([c for c in changes if c.kind == ADDED]) == 4 + 3 + 2 + 1


@pytest.mark.parametrize(
    "broken",
    [
        {"states": "applied"},
        {"states": None},
        {"states": [1, "x", None, ["key"], {"key": ["unhashable"]}]},
        {"transitions": {"event": "x"}},
        {"transitions": [7, {"event": None}, {"event": ["a"], "to": {"b": 1}, "from": 3, "set": [1]}]},
        {"milestones": 5},
        {"milestones": [{"states": "applied"}, "m"]},
        {"display": [{"field": {"x": 1}}, 3]},
        {"start_events": 5, "park_ttl": ["P1D"], "name": {"en": "Loan"}},
    ],
)
def test_invalid_documents_do_not_crash(broken):
    new = {**copy.deepcopy(LOAN), **broken}

    forward, backward = documents_diff(LOAN, new), documents_diff(new, LOAN)

    assert all(isinstance(change.text, str) for change in forward + backward)
    assert {c.kind for c in forward} <= {ADDED, REMOVED, CHANGED}


def test_entries_that_are_not_objects_are_left_out():
    new = edited(lambda d: d["states"].extend([1, "x", None]))

    assert documents_diff(LOAN, new) == []


def test_the_order_of_context_updates_is_no_change():
    old = edited(lambda d: d["transitions"][0].update(set={"b_long": "data.b", "zz": "data.z"}))
    new = edited(lambda d: d["transitions"][0].update(set={"zz": "data.z", "b_long": "data.b"}))

    assert documents_diff(old, new) == []


def test_a_draft_and_its_canonical_form_differ_in_nothing():
    # The designer compares a valid draft as publishing would store it (draft_report)
    draft = edited(lambda d: [d.pop("handler"), d.pop("park_ttl"), d["states"][0].pop("kind")])

    assert draft_report(draft, published=document_validate(draft))["changes"] == []
