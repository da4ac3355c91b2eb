"""An instance's progress as the customer sees it: its milestones, reached, current or upcoming.

Pure Python, no ORM: it reads a model document (or a compiled ``Definition``), the instance's
current state and its history (anything with ``to_state`` and ``occurred_at``, oldest first), so
that the REST API and the customer page show the same bar, and it can be tested alone.

Milestones come from the model's ``milestones`` (groups of internal states shown as one step);
when a model has none, every ``step`` state is its own milestone (docs/spec/status-models.md).
Progress is positional: every milestone before the one the instance is at counts as reached,
even when a transition skipped it, because the bar tells the customer how far along they are.

``BranchPlan`` is what the customer page adds on top: where the path ahead branches into steps or
outcomes that exclude each other (approved or declined), which steps are certain and which belong
to one branch only (docs/customer-page.md, "Branches"). It depends on the definition alone, so it is
made once per version (``tracking.progress.selectors.version_branch_plan``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from models_registry.definition import milestone_groups, reachable_from

REACHED, CURRENT, UPCOMING = "reached", "current", "upcoming"
TERMINAL_KINDS = ("success", "failure")


class HistoryEntry(Protocol):
    to_state: str
    occurred_at: datetime


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


# What an element of the bar (a milestone, or an outcome state that no milestone holds) is, seen from
# where the instance is: ahead on every path, ahead on one branch only, or not ahead at all.
CERTAIN, BRANCH, AWAY = "certain", "branch", "away"


@dataclass(frozen=True)
class BranchPlan:
    """The model's graph as the customer page reads it: which states lead to which, and what excludes what.

    Two states are **alternatives** when neither can reach the other: an instance that gets to one
    never gets to the other. A step that can be skipped is not an alternative to the steps after it
    (it leads to them), so skipping stays a matter of the positional rule above.

    The states that count as alternatives are those the bar shows: milestone states, success states,
    and failures that are the other outcome of a step ("declined" after "under review"). A failure
    that can come from the first step on and at more than one step ("cancelled", "returned to
    sender", ``from: "*"``) is a way out, not a branch of the path: the bar keeps showing the way to
    success, as it always has. Any other failure (entered from one milestone only, or only later
    than the first) is a decision's other outcome.
    """

    document: Mapping[str, Any]
    kinds: dict[str, str]
    successors: dict[str, frozenset[str]]  # the states one transition leads to ("*" made explicit)
    reach: dict[str, frozenset[str]]
    elements: dict[str, frozenset[str]]  # milestone key, or "outcome:<state>", -> its states
    related: dict[str, frozenset[str]]  # element -> the states it leads to or that lead to it
    alternatives: frozenset[str]
    decision_failures: frozenset[str]
    _seen_from: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> BranchPlan:
        kinds = {state["key"]: state.get("kind", "step") for state in document["states"]}
        open_states = [key for key, kind in kinds.items() if kind not in TERMINAL_KINDS]
        successors: dict[str, set[str]] = {key: set() for key in kinds}
        for transition in document.get("transitions", ()):
            sources = open_states if transition["from"] == "*" else transition["from"]
            for source in sources:
                successors[source].add(transition["to"])
        reach = {key: frozenset(reachable_from(key, successors)) for key in kinds}

        groups = milestone_groups(document)
        element_of = {state: group["key"] for group in groups for state in group["states"]}
        elements = {group["key"]: frozenset(group["states"]) for group in groups}
        for key, kind in kinds.items():
            if kind == "success" and key not in element_of:
                elements[outcome_element(key)] = frozenset([key])

        initial = document.get("initial_state")
        decision_failures = set()
        for failure in (key for key, kind in kinds.items() if kind == "failure"):
            sources = {s for s in kinds if failure in successors[s]}
            entered_from = {element_of[s] for s in sources if s in element_of}
            from_the_start = initial in sources or (initial in element_of and element_of[initial] in entered_from)
            if len(entered_from) == 1 or not from_the_start:
                decision_failures.add(failure)

        related = {
            element: frozenset(
                other for other in kinds if any(other in reach[state] or state in reach[other] for state in states)
            )
            for element, states in elements.items()
        }
        alternatives = frozenset(
            {state for states in elements.values() for state in states}
            | {key for key, kind in kinds.items() if kind == "success"}
            | decision_failures
        )
        return cls(
            document=document,
            kinds=kinds,
            successors={key: frozenset(targets) for key, targets in successors.items()},
            reach=reach,
            elements=elements,
            related=related,
            alternatives=alternatives,
            decision_failures=frozenset(decision_failures),
        )

    def seen_from(self, state: str) -> dict[str, str]:
        """Each element, seen from ``state``: CERTAIN (ahead on every path), BRANCH (ahead on some
        paths only: an alternative to it is ahead too) or AWAY (not ahead). Made once per state."""
        seen = self._seen_from.get(state)
        if seen is None:
            ahead = self.reach.get(state, frozenset([state]))
            options = self.alternatives & ahead
            seen = {}
            for element, states in self.elements.items():
                if not states & ahead:
                    seen[element] = AWAY
                elif options - self.related[element]:
                    seen[element] = BRANCH
                else:
                    seen[element] = CERTAIN
            self._seen_from[state] = seen
        return seen

    def fits_path(self, element: str, visited: Iterable[str]) -> bool:
        """Whether an element lies on the way the instance went: it leads to, or follows from, every
        state the instance has been in that the bar shows. A step of a branch not taken does not."""
        related = self.related[element]
        return all(state in related for state in visited if state in self.alternatives)

    def options(self, state: str, elements: Iterable[str]) -> list[str]:
        """The first state of each branch ahead of ``state`` among ``elements`` and the outcomes ahead,
        in the model's order: what the customer's neutral step says it will turn into."""
        ahead = self.reach.get(state, frozenset([state]))
        candidates = {s for element in elements for s in self.elements[element] if s in ahead}
        candidates |= {
            s for s in self.alternatives & ahead if s in self.decision_failures or self.kinds[s] == "success"
        }
        # A candidate that another one leads to (and not back: a loop is not an order) is not a first.
        firsts = {
            c
            for c in candidates
            if not any(c in self.reach[other] and other not in self.reach[c] for other in candidates if other != c)
        }
        return [state["key"] for state in self.document["states"] if state["key"] in firsts]


def outcome_element(state: str) -> str:
    """The element name of an outcome state that no milestone holds (no milestone key has a colon)."""
    return f"outcome:{state}"
