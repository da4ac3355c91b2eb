"""An instance's progress as the customer sees it: its milestones, reached, current or upcoming.

Pure Python, no ORM: it reads a model document (or a compiled ``Definition``), the instance's
current state and its history (anything with ``to_state`` and ``occurred_at``, oldest first), so
that the REST API and the customer page show the same bar, and it can be tested alone.

Milestones come from the model's ``milestones`` (groups of internal states shown as one step);
when a model has none, every ``step`` state is its own milestone (docs/spec/status-models.md).
Progress is positional: every milestone before the one the instance is at counts as reached,
even when a transition skipped it, because the bar tells the customer how far along they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

REACHED, CURRENT, UPCOMING = "reached", "current", "upcoming"
TERMINAL_KINDS = ("success", "failure")


class HistoryEntry(Protocol):
    to_state: str
    occurred_at: datetime


def milestone_groups(document: Mapping[str, Any]) -> list[dict]:
    """The model's milestones in order, each ``{key, label, description, states}``."""
    if document.get("milestones"):
        return [
            {
                "key": milestone["key"],
                "label": milestone["label"],
                "description": milestone.get("description", ""),
                "states": list(milestone["states"]),
            }
            for milestone in document["milestones"]
        ]
    return [
        {
            "key": state["key"],
            "label": state["label"],
            "description": state.get("description", ""),
            "states": [state["key"]],
        }
        for state in document["states"]
        if state.get("kind", "step") == "step"
    ]


def instance_milestones(instance: Any, definition: Any, history: Iterable[HistoryEntry]) -> list[dict]:
    """The milestone bar of an instance.

    ``instance`` needs a ``state``; ``definition`` is a ``Definition`` or its document; ``history``
    the instance's transition records, oldest first. Returns, in the model's order, dicts with
    ``key``, ``label``, ``description``, ``states``, ``status`` (reached, current, upcoming) and
    ``reached_at`` (when the instance first entered the milestone; None when upcoming or skipped).

    The milestone the instance is at is the one holding its state; in a state outside every
    milestone (an exception detour, a terminal outcome) it is the last milestone it was in. That
    milestone is ``current`` while the instance is still going, ``reached`` once it has ended; a
    success outside every milestone means the whole bar is reached.
    """
    document = getattr(definition, "document", definition)
    kinds = {state["key"]: state.get("kind", "step") for state in document["states"]}
    groups = milestone_groups(document)
    group_of = {state: index for index, group in enumerate(groups) for state in group["states"]}
    history = list(history)
    state = instance.state

    first_entered: dict[int, datetime] = {}
    for entry in history:
        index = group_of.get(entry.to_state)
        if index is not None and index not in first_entered:
            first_entered[index] = entry.occurred_at

    at = group_of.get(state)
    if at is None:
        at = next((group_of[e.to_state] for e in reversed(history) if e.to_state in group_of), -1)
    kind = kinds.get(state, "step")
    if kind == "success" and state not in group_of:
        at = len(groups) - 1
    ended = kind in TERMINAL_KINDS

    milestones = []
    for index, group in enumerate(groups):
        if index < at or (index == at and ended):
            status = REACHED
        elif index == at:
            status = CURRENT
        else:
            status = UPCOMING
        milestones.append(
            {
                **group,
                "status": status,
                "reached_at": first_entered.get(index) if status != UPCOMING else None,
            }
        )
    return milestones
