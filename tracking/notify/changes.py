"""What an applied transition means to a subscriber: the kinds of change it makes.

Pure Python over a compiled definition: every step is a ``transition``; it may also reach a
``milestone`` (the group of states the customer sees as one step), end in an ``outcome`` (a success
or failure state), or enter or leave an ``exception``. ``delayed`` comes from the delay check, not
from a transition.
"""

from __future__ import annotations

from dataclasses import dataclass

from models_registry.selectors import version_definition, version_milestone_of_states
from tracking.notify.models import ChangeKind

OUTCOME_KINDS = ("success", "failure")


@dataclass(frozen=True)
class Change:
    kind: str
    from_state: str  # "" when the transition created the instance
    to_state: str
    milestone: dict | None = None  # {"key", "label"} of the milestone the instance is at after it
    outcome: str | None = None  # "success" or "failure" when it ended there


def milestone_of_states(version_id: int) -> dict[str, dict]:
    return version_milestone_of_states(version_id=version_id)


def step_changes(*, version_id: int, from_state: str, to_state: str) -> tuple[Change, ...]:
    """The changes a transition makes; worked out once per version and pair of states (versions never
    change, and the apply asks for the same pairs all the time)."""
    definition = version_definition(version_id=version_id)
    # Kept on the cached definition itself, so that it goes with it when definitions are forgotten.
    memo = definition.__dict__.setdefault("_notify_step_changes", {})
    changes = memo.get((from_state, to_state))
    if changes is None:
        changes = memo[(from_state, to_state)] = _changes(definition.kinds, version_id, from_state, to_state)
    return changes


def _changes(kinds, version_id: int, from_state: str, to_state: str) -> tuple[Change, ...]:
    milestones = milestone_of_states(version_id)
    milestone = milestones.get(to_state)
    before, after = kinds.get(from_state), kinds[to_state]
    changes = [Change(ChangeKind.TRANSITION, from_state, to_state, milestone)]
    if milestone is not None and milestone != milestones.get(from_state):
        changes.append(Change(ChangeKind.MILESTONE, from_state, to_state, milestone))
    if after in OUTCOME_KINDS:
        changes.append(Change(ChangeKind.OUTCOME, from_state, to_state, milestone, outcome=after))
    if after == "exception" and before != "exception":
        changes.append(Change(ChangeKind.EXCEPTION_ENTERED, from_state, to_state, milestone))
    if before == "exception" and after != "exception":
        changes.append(Change(ChangeKind.EXCEPTION_LEFT, from_state, to_state, milestone))
    return tuple(changes)
