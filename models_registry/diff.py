"""What changes between two status model documents, in words: for the publish summary and the
version diff page.

Pure Python, for valid and invalid documents alike (a draft may still have errors). States and
milestones are matched by key, display fields by field name, transitions by event and target
state: a transition whose sources, condition or assignments change is "changed", one whose event
or target changes is removed and added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

# Top-level fields, in the order a reader meets them, with the words for them.
MODEL_FIELDS = {
    "name": "name",
    "description": "description",
    "handler": "handler",
    "initial_state": "initial state",
    "start_events": "start events",
    "park_ttl": "how long early events wait",
}
STATE_FIELDS = {"label": "label", "kind": "kind", "description": "description", "expected_within": "expected within"}
TRANSITION_FIELDS = {"from": "from", "when": "condition", "set": "context updates"}
MILESTONE_FIELDS = {"label": "label", "description": "description", "states": "states"}


@dataclass(frozen=True)
class Change:
    section: str  # "model", "states", "transitions", "milestones", "display"
    kind: str  # ADDED, REMOVED or CHANGED
    subject: str  # what changed, e.g. "state 'approved'"
    details: tuple[str, ...] = ()  # for CHANGED: "label: 'Approved' → 'Accepted'", …

    @property
    def text(self) -> str:
        head = f"{self.subject} {self.kind}"
        return f"{head}: {'; '.join(self.details)}" if self.details else head


def _show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "(none)"
    if value == "*":
        return "any open state"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        # Sorted: the order of context updates means nothing, and jsonb does not keep it.
        return ", ".join(f"{name} = {expression}" for name, expression in sorted(value.items(), key=str))
    return repr(value) if isinstance(value, str) else str(value)


def _field_changes(old: Mapping, new: Mapping, fields: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(
        f"{words}: {_show(old.get(name))} → {_show(new.get(name))}"
        for name, words in fields.items()
        if _show(old.get(name)) != _show(new.get(name))
    )


def _entries(document: Mapping, section: str) -> list[Mapping]:
    entries = document.get(section)
    return [entry for entry in entries if isinstance(entry, Mapping)] if isinstance(entries, list) else []


def _keyed(entries: list[Mapping], key) -> dict:
    """Entries by (key, n): the n-th entry with that key, so that repeated keys are matched in order."""
    keyed: dict = {}
    seen: dict = {}
    for entry in entries:
        k = key(entry)
        seen[k] = seen.get(k, -1) + 1
        keyed[(k, seen[k])] = entry
    return keyed


def _section(old: Mapping, new: Mapping, section: str, key, subject, fields) -> list[Change]:
    def name(k) -> str:
        return subject(k[0]) + (f" (#{k[1] + 1} of that kind)" if k[1] else "")

    before, after = _keyed(_entries(old, section), key), _keyed(_entries(new, section), key)
    changes = [Change(section, REMOVED, name(k)) for k in before if k not in after]
    for k, entry in after.items():
        if k not in before:
            changes.append(Change(section, ADDED, name(k)))
        elif details := _field_changes(before[k], entry, fields):
            changes.append(Change(section, CHANGED, name(k), details))
    return changes


def _transition_key(transition: Mapping) -> tuple[str, str]:
    return (str(transition.get("event")), str(transition.get("to")))


def documents_diff(old: Mapping | None, new: Mapping) -> list[Change]:
    """The changes from ``old`` to ``new`` (``old`` None: everything is new), model fields first."""
    old = old or {}
    changes = [
        Change("model", CHANGED, words, (f"{_show(old.get(name))} → {_show(new.get(name))}",))
        for name, words in MODEL_FIELDS.items()
        if _show(old.get(name)) != _show(new.get(name))
    ]
    changes += _section(old, new, "states", lambda s: str(s.get("key")), lambda k: f"state {k!r}", STATE_FIELDS)
    changes += _section(
        old,
        new,
        "transitions",
        _transition_key,
        lambda k: f"transition {k[0]!r} to {k[1]!r}",
        TRANSITION_FIELDS,
    )
    changes += _section(
        old, new, "milestones", lambda m: str(m.get("key")), lambda k: f"milestone {k!r}", MILESTONE_FIELDS
    )
    changes += _section(
        old, new, "display", lambda d: str(d.get("field")), lambda k: f"display field {k!r}", {"label": "label"}
    )
    return changes
