"""The designer's reading of a draft (models_registry.designer): every problem the validator finds,
on its row and field and in words; the report beside the form; the sample events for "Try it"."""

from __future__ import annotations

import copy
import re

import pytest

from models_registry.designer import Problem, describe_problems, draft_report, sample_events
from models_registry.services import draft_errors
from tests.models_registry.test_diff import LOAN

pytestmark = pytest.mark.django_db  # draft_report renders a template; the handlers are read


def field_of(path: str) -> str:
    """The designer's field for a validator path: a list item's or a context field's path is its list's."""
    return re.match(r"^(\w+(?:\[\d+\])?(?:\.\w+)?)?", path)[0]


def problems_of(change) -> list[Problem]:
    document = copy.deepcopy(LOAN)
    change(document)
    return describe_problems(document, draft_errors(document))


def _set(path: list, value):
    def change(document):
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


# (change to the loan model, the problem it must give: path, row, text)
CASES = {
    "unknown target": (
        _set(["transitions", 1, "to"], "aproved"),
        Problem(
            "transitions[1].to",
            "transitions[1]",
            "Transition 2 (loan.decided): 'aproved' is not a state of this model.",
        ),
    ),
    "unknown source": (
        _set(["transitions", 0, "from"], ["applied", "nowhere"]),
        Problem(
            "transitions[0].from",
            "transitions[0]",
            "Transition 1 (loan.reviewed): 'nowhere' is not a state of this model.",
        ),
    ),
    "terminal source": (
        _set(["transitions", 0, "from"], ["approved"]),
        Problem(
            "transitions[0].from",
            "transitions[0]",
            "Transition 1 (loan.reviewed): 'approved' is terminal and cannot have outgoing transitions.",
        ),
    ),
    "no source": (
        _set(["transitions", 2, "from"], []),
        Problem(
            "transitions[2].from",
            "transitions[2]",
            'Transition 3 (loan.decided): Choose at least one state, or "any open state".',
        ),
    ),
    "no event": (
        _set(["transitions", 0, "event"], ""),
        Problem("transitions[0].event", "transitions[0]", "Transition 1: This field is required."),
    ),
    "event not a string": (
        _set(["transitions", 0, "event"], 7),
        Problem("transitions[0].event", "transitions[0]", "Transition 1: Must be a string."),
    ),
    "transition not an object": (
        _set(["transitions", 2], "loan.decided"),
        Problem("transitions[2]", "transitions[2]", "Transition 3: Must be an object."),
    ),
    "set not a map": (
        _set(["transitions", 0, "set"], ["data.x"]),
        Problem(
            "transitions[0].set",
            "transitions[0]",
            "Transition 1 (loan.reviewed): Must be a map of context field to JMESPath expression.",
        ),
    ),
    "set field without a name": (
        _set(["transitions", 0, "set"], {"": "data.x"}),
        Problem(
            "transitions[0].set",
            "transitions[0]",
            "Transition 1 (loan.reviewed): Context field names must be non-empty strings, not ''.",
        ),
    ),
    "set expression empty": (
        _set(["transitions", 0, "set"], {"officer": " "}),
        Problem(
            "transitions[0].set",
            "transitions[0]",
            "Transition 1 (loan.reviewed), context field 'officer': Must be a non-empty JMESPath expression.",
        ),
    ),
    "set field name with a dot": (
        _set(["transitions", 0, "set"], {"customer.name": ""}),
        Problem(
            "transitions[0].set",
            "transitions[0]",
            "Transition 1 (loan.reviewed), context field 'customer.name': Must be a non-empty JMESPath expression.",
        ),
    ),
    "when empty": (
        _set(["transitions", 1, "when"], ""),
        Problem(
            "transitions[1].when",
            "transitions[1]",
            "Transition 2 (loan.decided): Must be a non-empty JMESPath expression.",
        ),
    ),
    "state key not a key": (
        _set(["states", 1, "key"], "In Review"),
        Problem(
            "states[1].key", "states[1]", "State 2 (In Review): Use 1 to 64 lowercase letters, digits or underscores."
        ),
    ),
    "state key repeated": (
        _set(["states", 1, "key"], "applied"),
        Problem("states[1].key", "states[1]", "State 2 (applied): Duplicate state key 'applied'."),
    ),
    "state kind": (
        _set(["states", 0, "kind"], "middle"),
        Problem("states[0].kind", "states[0]", "State 1 (applied): Must be one of step, success, failure, exception."),
    ),
    "state label": (
        _set(["states", 0, "label"], ""),
        Problem("states[0].label", "states[0]", "State 1 (applied): This field is required."),
    ),
    "state description": (
        _set(["states", 2, "description"], "x" * 2001),
        Problem("states[2].description", "states[2]", "State 3 (approved): At most 2000 characters."),
    ),
    "state expected within": (
        _set(["states", 1, "expected_within"], "2 days"),
        Problem(
            "states[1].expected_within",
            "states[1]",
            "State 2 (review): Must be an ISO 8601 duration in days, hours, minutes or seconds, such as P7D or PT30M.",
        ),
    ),
    "state not an object": (
        _set(["states", 3], "declined"),
        Problem("states[3]", "states[3]", "State 4: Must be an object."),
    ),
    "unreachable state": (
        lambda d: d["states"].append({"key": "lost", "label": "Lost", "kind": "step"}),
        Problem("states[4].key", "states[4]", "State 5 (lost): State 'lost' is unreachable from 'applied'."),
    ),
    "milestone unknown state": (
        _set(["milestones", 0, "states"], ["applied", "nowhere"]),
        Problem(
            "milestones[0].states", "milestones[0]", "Milestone 1 (start): 'nowhere' is not a state of this model."
        ),
    ),
    "milestone state twice": (
        _set(["milestones", 1, "states"], ["applied"]),
        Problem(
            "milestones[1].states",
            "milestones[1]",
            "Milestone 2 (check): State 'applied' is already in milestone 'start'.",
        ),
    ),
    "milestone without states": (
        _set(["milestones", 0, "states"], []),
        Problem("milestones[0].states", "milestones[0]", "Milestone 1 (start): List at least one state."),
    ),
    "milestone key repeated": (
        _set(["milestones", 1, "key"], "start"),
        Problem("milestones[1].key", "milestones[1]", "Milestone 2 (start): Duplicate milestone key 'start'."),
    ),
    "milestone label": (
        _set(["milestones", 1, "label"], None),
        Problem("milestones[1].label", "milestones[1]", "Milestone 2 (check): This field is required."),
    ),
    "display label": (
        _set(["display", 0, "label"], ""),
        Problem("display[0].label", "display[0]", "Display field 1 (amount): This field is required."),
    ),
    "display field repeated": (
        lambda d: d["display"].append({"field": "amount", "label": "Again"}),
        Problem("display[1].field", "display[1]", "Display field 2 (amount): Duplicate display field 'amount'."),
    ),
    "display entry not an object": (
        lambda d: d["display"].append("amount"),
        Problem("display[1]", "display[1]", "Display field 2: Must be an object."),
    ),
    "start event empty": (
        _set(["start_events"], ["loan.applied", ""]),
        Problem("start_events[1]", "start_events[1]", "Start event 2: Must be a non-empty string."),
    ),
    "start events not a list": (
        _set(["start_events"], "loan.applied"),
        Problem("start_events", "", "Start events: Must be a list."),
    ),
    "transitions not a list": (
        _set(["transitions"], {"event": "x"}),
        Problem("transitions", "", "Transitions: Must be a list."),
    ),
    "milestones not a list": (
        _set(["milestones"], "start"),
        Problem("milestones", "", "Milestones: Must be a list."),
    ),
    "display not a list": (
        _set(["display"], 5),
        Problem("display", "", "Display fields: Must be a list."),
    ),
    "no states": (
        _set(["states"], []),
        Problem("states", "", "States: At least one state is required."),
    ),
    "unknown initial state": (
        _set(["initial_state"], "aplied"),
        Problem("initial_state", "", "Initial state: 'aplied' is not a state of this model."),
    ),
    "terminal initial state": (
        _set(["initial_state"], "approved"),
        Problem("initial_state", "", "Initial state: The initial state cannot be terminal."),
    ),
    "model id": (
        _set(["id"], "Loan!"),
        Problem(
            "id",
            "",
            "Model id: Use up to 64 lowercase letters, digits, dots, dashes or underscores, starting with a letter "
            "or digit.",
        ),
    ),
    "name": (_set(["name"], ""), Problem("name", "", "Name: This field is required.")),
    "description": (_set(["description"], 5), Problem("description", "", "Description: Must be a string.")),
    "park ttl": (
        _set(["park_ttl"], "a week"),
        Problem(
            "park_ttl",
            "",
            "How long early events wait: Must be an ISO 8601 duration in days, hours, minutes or seconds, such as "
            "P7D or PT30M.",
        ),
    ),
}


@pytest.mark.parametrize(("change", "expected"), CASES.values(), ids=CASES.keys())
def test_each_problem_stands_on_its_row_and_field_in_words(change, expected):
    problems = problems_of(change)

    assert expected in problems


@pytest.mark.parametrize("change", [case[0] for case in CASES.values()], ids=CASES.keys())
def test_every_message_of_the_validator_is_said_once_on_a_field_of_its_row(change):
    document = copy.deepcopy(LOAN)
    change(document)
    errors = draft_errors(document)

    problems = describe_problems(document, errors)

    assert len(problems) == sum(len(messages) for messages in errors.values())
    for problem in problems:
        assert problem.path.startswith(problem.row)
        assert problem.path in {field_of(path) for path in errors}
        if problem.row:
            number = int(problem.row.split("[")[1].rstrip("]")) + 1
            assert f" {number}" in problem.text.split(":")[0]


def test_an_unknown_handler_names_the_registered_ones():
    (problem,) = problems_of(_set(["handler"], "nope"))

    assert (problem.path, problem.row) == ("handler", "")
    assert problem.text.startswith("Handler: Unknown handler 'nope'; registered: ")
    assert "declarative" in problem.text


def test_a_document_that_is_not_an_object_is_one_problem_of_the_whole():
    assert describe_problems({}, draft_errors(["not", "a", "model"])) == [
        Problem("", "", "A status model must be an object.")
    ]


def test_paths_the_designer_does_not_know_are_kept_in_words():
    problems = describe_problems(LOAN, {"somewhere.else": ["Odd."], "states[0].key": ["Must match [a-z0-9_]{1,64}."]})

    assert problems == [
        Problem("", "", "Odd."),
        Problem(
            "states[0].key", "states[0]", "State 1 (applied): Use 1 to 64 lowercase letters, digits or underscores."
        ),
    ]


def test_a_valid_draft_has_no_problems():
    assert problems_of(lambda d: None) == []


def test_draft_report_against_the_published_version():
    draft = copy.deepcopy(LOAN)
    draft["transitions"][1]["to"] = "aproved"
    draft["states"][1]["label"] = "Under review"

    report = draft_report(draft, published=LOAN)

    assert report["problems"] == [
        {
            "path": "transitions[1].to",
            "row": "transitions[1]",
            "text": "Transition 2 (loan.decided): 'aproved' is not a state of this model.",
        }
    ]
    assert report["changes"] == [
        "state 'review' changed: label: 'In review' → 'Under review'",
        "transition 'loan.decided' to 'approved' removed",
        "transition 'loan.decided' to 'aproved' added",
    ]
    assert 'class="model-diagram"' in report["diagram_html"]
    assert "<code>review</code>" in report["diagram_html"]
    assert [sample["event_type"] for sample in report["samples"]] == ["loan.applied", "loan.reviewed", "loan.decided"]


def test_draft_report_of_a_new_model_lists_everything_as_created():
    report = draft_report(LOAN, published=None)

    assert report["problems"] == []
    assert "state 'applied' added" in report["changes"]
    assert "name changed: (none) → 'Loan application'" in report["changes"]


def test_sample_events_one_per_event_type_with_the_data_read():
    document = copy.deepcopy(LOAN)
    document["start_events"] = ["loan.applied", "loan.reviewed"]
    document["transitions"][0]["set"] = {"officer": "data.officer.name", "when": "join(', ', data.notes)"}
    document["transitions"][1]["when"] = "data.ok == `true` && data.score > `600`"
    document["transitions"].append({"event": "loan.reviewed", "from": ["review"], "to": "review", "when": "data.again"})
    document["transitions"] += ["x", {"event": ""}, {"event": 5}, {"event": "loan.withdrawn", "set": {"a": 7}}]

    assert sample_events(document) == [
        {"event_type": "loan.applied", "data": {}},
        {"event_type": "loan.reviewed", "data": {"officer": "example", "notes": "example", "again": "example"}},
        {"event_type": "loan.decided", "data": {"ok": "example", "score": "example"}},
        {"event_type": "loan.withdrawn", "data": {}},
    ]


def test_sample_events_read_data_fields_not_metadata():
    document = {**LOAN, "transitions": [{"event": "x", "when": "metadata.y && data.z"}]}

    assert sample_events(document) == [
        {"event_type": "loan.applied", "data": {}},
        {"event_type": "x", "data": {"z": "example"}},
    ]


def test_sample_events_of_a_start_events_string_are_not_its_letters():
    samples = sample_events({**LOAN, "start_events": "loan.applied", "transitions": []})

    assert samples == []


BROKEN_DRAFTS = {
    "start events a number": pytest.param({"start_events": 5}),
    "transitions a number": pytest.param({"transitions": 5}),
    "target an object": pytest.param({"transitions": [{"event": "x", "from": ["applied"], "to": {"a": 1}}]}),
    "states a string": pytest.param({"states": "applied"}),
    "entries of the wrong type": pytest.param(
        {"states": [1, {"key": 2}], "transitions": [None, {"event": ["x"], "from": 3}], "milestones": [{"states": 4}]}
    ),
    "sections null": pytest.param({"states": None, "transitions": None, "milestones": None, "display": None}),
}


@pytest.mark.parametrize("broken", BROKEN_DRAFTS.values(), ids=BROKEN_DRAFTS.keys())
def test_draft_report_of_a_broken_draft_says_what_is_wrong(broken):
    document = {**copy.deepcopy(LOAN), **broken}

    report = draft_report(document, published=LOAN)

    assert report["problems"]
    assert all(problem["text"] for problem in report["problems"])
