"""A plain replay of docs/spec/status-models.md, "What happens to an event", written from the spec.

Tests compare the service against this replay, so it deliberately shares no code with
``tracking/apply/engine.py`` or ``models_registry/handlers.py``: it reads the model document as the spec
describes it and walks the numbered rules one event at a time, in arrival order. It is slow and
simple on purpose; only JMESPath evaluation comes from the ``jmespath`` library, the expression
language the spec names.

``replay(document, envelopes)`` returns, per transaction id::

    {
        "state": str | None,          # None: no instance (nothing has started one)
        "context": dict,
        "outcomes": {event_id: "applied" | "parked" | "ignored" | "rejected"},
        "history": [(from_state | None, to_state, event_id), ...],   # creation: from None
        "duplicates": {event_id: count},  # later deliveries of an event id already seen
    }

Not covered: ``park_ttl`` expiry (it depends on the clock) and envelope validation (the
envelopes are taken as valid native-form dicts; one naming another model is "rejected").
Expressions are evaluated on the envelope exactly as given (one that fails on it, such as
``contains(data.tags, 'x')`` without tags, is null), so envelopes should carry every
field an expression reads (the service fills ``source``, ``data`` and ``occurred_at`` defaults).
"""

from __future__ import annotations

from collections.abc import Iterable

import jmespath
from jmespath.exceptions import JMESPathError

TERMINAL_KINDS = ("success", "failure")


def jmespath_truthy(value) -> bool:
    """JMESPath's truth: false, null, "", [] and {} are false; everything else (0 too) is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict) and not value:
        return False
    return True


class _Model:
    """The parts of a status model document that the rules read."""

    def __init__(self, document: dict):
        self.id = document["id"]
        self.initial_state = document["initial_state"]
        self.start_events = list(document.get("start_events") or [])
        self.kinds = {state["key"]: state.get("kind") or "step" for state in document["states"]}
        self.transitions = []
        for entry in document.get("transitions") or []:
            if entry["from"] == "*":
                sources = {key for key, kind in self.kinds.items() if kind not in TERMINAL_KINDS}
            else:
                sources = set(entry["from"])
            self.transitions.append(
                {
                    "event": entry["event"],
                    "from": sources,
                    "to": entry["to"],
                    "when": entry.get("when"),
                    "set": dict(entry.get("set") or {}),
                }
            )

    def is_terminal(self, state: str) -> bool:
        return self.kinds[state] in TERMINAL_KINDS

    def may_start(self, event_type: str) -> bool:
        return not self.start_events or event_type in self.start_events

    def reachable_from(self, state: str) -> set[str]:
        """States the instance can get to from ``state`` through one or more transitions."""
        found: set[str] = set()
        frontier = [state]
        while frontier:
            current = frontier.pop()
            for entry in self.transitions:
                if current in entry["from"] and entry["to"] not in found:
                    found.add(entry["to"])
                    frontier.append(entry["to"])
        return found


def _value(expression: str, envelope: dict):
    """An expression's value on the envelope; null when it fails on it (a function given null).

    The spec does not say; this is the service's documented choice, so that such an event is
    decided like any other."""
    try:
        return jmespath.search(expression, envelope)
    except JMESPathError:
        return None


def _when_holds(entry: dict, envelope: dict) -> bool:
    return entry["when"] is None or jmespath_truthy(_value(entry["when"], envelope))


def _decide(model: _Model, state: str, envelope: dict) -> tuple[str, dict | None]:
    """Rules 4-6 for an instance that exists: ("applied", entry), ("parked", None) or ("ignored", None)."""
    if model.is_terminal(state):
        return "ignored", None
    entries = [entry for entry in model.transitions if entry["event"] == envelope["event_type"]]
    for entry in entries:
        if state in entry["from"] and _when_holds(entry, envelope):
            return "applied", entry
    later = model.reachable_from(state) - {state}
    for entry in entries:
        if _when_holds(entry, envelope) and entry["from"] & later:
            return "parked", None
    return "ignored", None


class _Instance:
    def __init__(self):
        self.state: str | None = None
        self.context: dict = {}
        self.outcomes: dict[str, str] = {}
        self.history: list[tuple[str | None, str, str]] = []
        self.duplicates: dict[str, int] = {}
        self.parked: list[dict] = []  # in arrival order

    def take(self, entry: dict, envelope: dict) -> None:
        self.history.append((self.state, entry["to"], envelope["event_id"]))
        self.state = entry["to"]
        for name, expression in entry["set"].items():
            self.context[name] = _value(expression, envelope)

    def as_result(self) -> dict:
        return {
            "state": self.state,
            "context": self.context,
            "outcomes": self.outcomes,
            "history": self.history,
            "duplicates": self.duplicates,
        }


def _retry_parked(model: _Model, instance: _Instance) -> None:
    """After each transition, the parked events are tried again in arrival order."""
    again = True
    while again:
        again = False
        for envelope in list(instance.parked):
            outcome, entry = _decide(model, instance.state, envelope)
            if outcome == "parked":
                continue
            instance.parked.remove(envelope)
            instance.outcomes[envelope["event_id"]] = outcome
            if outcome == "applied":
                instance.take(entry, envelope)
                again = True  # that was a transition too: start over from the earliest parked event
                break


def replay(document: dict, envelopes: Iterable[dict]) -> dict[str, dict]:
    """Apply native-form envelopes, in the given (arrival) order, to instances of one model."""
    model = _Model(document)
    instances: dict[str, _Instance] = {}
    owner_of: dict[str, _Instance] = {}  # event id -> the instance that stored it first
    first: dict[str, dict] = {}  # event id -> its first delivery

    for envelope in envelopes:
        event_id = envelope["event_id"]
        # Rule 1: an event id seen before changes nothing: the same event again is a duplicate
        # (counted); the id reused with another body is a conflict (not counted: kept apart).
        if event_id in owner_of:
            if envelope == first[event_id]:
                duplicates = owner_of[event_id].duplicates
                duplicates[event_id] = duplicates.get(event_id, 0) + 1
            continue
        instance = instances.setdefault(envelope["transaction_id"], _Instance())
        # Rule 2: an event of another model is rejected (and, not being stored, not remembered).
        if envelope["model_id"] != model.id:
            instance.outcomes[event_id] = "rejected"
            continue
        owner_of[event_id] = instance
        first[event_id] = envelope
        # Rule 3: no instance yet.
        if instance.state is None:
            if model.may_start(envelope["event_type"]):
                instance.state = model.initial_state
                instance.history.append((None, model.initial_state, event_id))
                instance.outcomes[event_id] = "applied"
                for entry in model.transitions:
                    if (
                        entry["event"] == envelope["event_type"]
                        and model.initial_state in entry["from"]
                        and _when_holds(entry, envelope)
                    ):
                        instance.take(entry, envelope)
                        break
                _retry_parked(model, instance)
            else:
                instance.outcomes[event_id] = "parked"
                instance.parked.append(envelope)
            continue
        # Rules 4-6.
        outcome, entry = _decide(model, instance.state, envelope)
        instance.outcomes[event_id] = outcome
        if outcome == "applied":
            instance.take(entry, envelope)
            _retry_parked(model, instance)
        elif outcome == "parked":
            instance.parked.append(envelope)

    return {transaction_id: instance.as_result() for transaction_id, instance in instances.items()}
