"""The milestone bar (tracking.progress.milestones), alone: plain objects in, plain dicts out, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from models_registry.definition import Definition
from models_registry.validation import document_validate
from tracking.progress.milestones import instance_milestones, milestone_groups

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

DOCUMENT = document_validate(
    {
        "id": "loan",
        "name": "Loan application",
        "initial_state": "applied",
        "states": [
            {"key": "applied", "label": "Applied"},
            {"key": "checking", "label": "Checking"},
            {"key": "scoring", "label": "Scoring"},
            {"key": "offer", "label": "Offer made", "description": "Sign it to go on."},
            {"key": "missing_docs", "label": "Documents missing", "kind": "exception"},
            {"key": "paid_out", "label": "Paid out", "kind": "success"},
            {"key": "declined", "label": "Declined", "kind": "failure"},
        ],
        "transitions": [
            {"event": "check", "from": ["applied"], "to": "checking"},
            {"event": "score", "from": ["checking"], "to": "scoring"},
            {"event": "fast_track", "from": ["applied"], "to": "offer"},
            {"event": "offer", "from": ["scoring"], "to": "offer"},
            {"event": "recheck", "from": ["offer"], "to": "checking"},
            {"event": "docs_missing", "from": "*", "to": "missing_docs"},
            {"event": "docs_received", "from": ["missing_docs"], "to": "checking"},
            {"event": "pay", "from": ["offer"], "to": "paid_out"},
            {"event": "decline", "from": "*", "to": "declined"},
        ],
    }
)
GROUPED = document_validate(
    {
        **DOCUMENT,
        "milestones": [
            {"key": "received", "label": "Received", "states": ["applied"]},
            {"key": "review", "label": "In review", "states": ["checking", "scoring"]},
            {"key": "offer", "label": "Offer", "states": ["offer"]},
        ],
    }
)


def history(*states: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(to_state=s, occurred_at=T0 + timedelta(hours=i)) for i, s in enumerate(states)]


def bar(document, state: str, states: tuple[str, ...]) -> list[tuple[str, str, int | None]]:
    """(key, status, hour reached or None) for each milestone."""
    milestones = instance_milestones(SimpleNamespace(state=state), document, history(*states))
    return [
        (m["key"], m["status"], None if m["reached_at"] is None else int((m["reached_at"] - T0) / timedelta(hours=1)))
        for m in milestones
    ]


def test_without_milestones_every_step_state_is_one():
    groups = milestone_groups(DOCUMENT)

    assert [g["key"] for g in groups] == ["applied", "checking", "scoring", "offer"]
    assert groups[3] == {"key": "offer", "label": "Offer made", "description": "Sign it to go on.", "states": ["offer"]}


@pytest.mark.parametrize(
    ("state", "states", "expected"),
    [
        pytest.param(
            "applied",
            ("applied",),
            [
                ("applied", "current", 0),
                ("checking", "upcoming", None),
                ("scoring", "upcoming", None),
                ("offer", "upcoming", None),
            ],
            id="just started",
        ),
        pytest.param(
            "offer",
            ("applied", "offer"),
            [
                ("applied", "reached", 0),
                ("checking", "reached", None),
                ("scoring", "reached", None),
                ("offer", "current", 1),
            ],
            id="a skipped milestone counts as reached, with no time",
        ),
        pytest.param(
            "checking",
            ("applied", "checking", "scoring", "offer", "checking"),
            [
                ("applied", "reached", 0),
                ("checking", "current", 1),
                ("scoring", "upcoming", None),
                ("offer", "upcoming", None),
            ],
            id="sent back: later milestones are upcoming again, first time kept",
        ),
        pytest.param(
            "missing_docs",
            ("applied", "checking", "missing_docs"),
            [
                ("applied", "reached", 0),
                ("checking", "current", 1),
                ("scoring", "upcoming", None),
                ("offer", "upcoming", None),
            ],
            id="an exception keeps the last milestone current",
        ),
        pytest.param(
            "paid_out",
            ("applied", "offer", "paid_out"),
            [
                ("applied", "reached", 0),
                ("checking", "reached", None),
                ("scoring", "reached", None),
                ("offer", "reached", 1),
            ],
            id="success: all reached",
        ),
        pytest.param(
            "declined",
            ("applied", "checking", "declined"),
            [
                ("applied", "reached", 0),
                ("checking", "reached", 1),
                ("scoring", "upcoming", None),
                ("offer", "upcoming", None),
            ],
            id="failure: reached up to where it stopped",
        ),
    ],
)
def test_bar_from_step_states(state, states, expected):
    assert bar(DOCUMENT, state, states) == expected


def test_grouped_states_show_as_one_milestone():
    assert bar(GROUPED, "scoring", ("applied", "checking", "scoring")) == [
        ("received", "reached", 0),
        ("review", "current", 1),
        ("offer", "upcoming", None),
    ]


def test_a_compiled_definition_is_accepted_too():
    compiled = Definition.from_document(GROUPED)

    milestones = instance_milestones(SimpleNamespace(state="offer"), compiled, history("applied", "offer"))

    assert [m["status"] for m in milestones] == ["reached", "reached", "current"]
    assert milestones[1]["states"] == ["checking", "scoring"]
