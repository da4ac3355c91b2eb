"""Status model documents: validation, the canonical form, and the compiled form handlers read.

Pure Python (no ORM), shared by the admin, ``import_models`` and the REST API so that all three
accept and refuse exactly the same documents with the same per-field messages.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import jmespath
from django.utils.dateparse import parse_duration
from jmespath.exceptions import JMESPathError

MODEL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
STATE_KEY_RE = re.compile(r"^[a-z0-9_]{1,64}$")
STATE_KINDS = ("step", "success", "failure", "exception")
TERMINAL_KINDS = ("success", "failure")
ANY_STATE = "*"
DEFAULT_PARK_TTL = "P7D"


class DefinitionError(Exception):
    """A document that is not a valid status model; ``errors`` maps field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in errors.items()))


def parse_iso_duration(value: Any) -> timedelta | None:
    """An ISO 8601 duration such as ``P7D`` or ``PT30M``; None when it is not one."""
    if not isinstance(value, str) or not value.startswith("P"):
        return None
    return parse_duration(value)


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, "" and empty lists/objects are false; 0 is true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict) and len(value) == 0:
        return False
    return True


class _Collector:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)


def _text(raw: Mapping, key: str, path: str, errors: _Collector, *, required: bool, max_length: int) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            errors.add(path, "This field is required.")
        return ""
    if not isinstance(value, str):
        errors.add(path, "Must be a string.")
        return ""
    if len(value) > max_length:
        errors.add(path, f"At most {max_length} characters.")
    return value


def _is_key_of(value: Any, keys: Mapping[str, str]) -> bool:
    # A list or an object where a key belongs is an unknown key, not a crash on hashing it.
    return isinstance(value, str) and value in keys


def _compiles(expression: Any, path: str, errors: _Collector) -> bool:
    if not isinstance(expression, str) or not expression.strip():
        errors.add(path, "Must be a non-empty JMESPath expression.")
        return False
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        errors.add(path, f"JMESPath expression does not compile: {exc}")
        return False
    return True


def _duration(raw: Mapping, key: str, path: str, errors: _Collector) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if parse_iso_duration(value) is None:
        errors.add(path, "Must be an ISO 8601 duration in days, hours, minutes or seconds, such as P7D or PT30M.")
        return None
    return value


def _list(raw: Mapping, key: str, path: str, errors: _Collector) -> list:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add(path, "Must be a list.")
        return []
    return value


def validate_definition(raw: Any, *, handler_names: Collection[str]) -> dict:
    """Check a status model document and return its canonical form, or raise DefinitionError.

    The canonical form has every top-level field, keys in a fixed order and optional per-entry
    fields only when they are set, so that export -> import -> export is byte-identical.
    ``handler_names`` are the handlers a model may name (``models_registry.validation`` passes
    the registered ones).
    """
    errors = _Collector()
    if not isinstance(raw, Mapping):
        raise DefinitionError({"": ["A status model must be an object."]})

    model_id = raw.get("id")
    if not isinstance(model_id, str) or not MODEL_ID_RE.fullmatch(model_id):
        errors.add("id", "Must match [a-z0-9][a-z0-9._-]{0,63}.")
    name = _text(raw, "name", "name", errors, required=True, max_length=200)
    description = _text(raw, "description", "description", errors, required=False, max_length=2000)
    handler = raw.get("handler") or "declarative"
    if not isinstance(handler, str) or handler not in handler_names:
        errors.add("handler", f"Unknown handler {handler!r}; registered: {', '.join(sorted(handler_names))}.")
    park_ttl = _duration(raw, "park_ttl", "park_ttl", errors) or DEFAULT_PARK_TTL

    start_events = _list(raw, "start_events", "start_events", errors)
    for i, event_type in enumerate(start_events):
        if not isinstance(event_type, str) or not event_type:
            errors.add(f"start_events[{i}]", "Must be a non-empty string.")

    states: list[dict] = []
    kinds: dict[str, str] = {}
    raw_states = _list(raw, "states", "states", errors)
    if not raw_states and "states" not in errors.errors:
        errors.add("states", "At least one state is required.")
    for i, raw_state in enumerate(raw_states):
        path = f"states[{i}]"
        if not isinstance(raw_state, Mapping):
            errors.add(path, "Must be an object.")
            continue
        key = raw_state.get("key")
        if not isinstance(key, str) or not STATE_KEY_RE.fullmatch(key):
            errors.add(f"{path}.key", "Must match [a-z0-9_]{1,64}.")
        elif key in kinds:
            errors.add(f"{path}.key", f"Duplicate state key {key!r}.")
        kind = raw_state.get("kind") or "step"
        if kind not in STATE_KINDS:
            errors.add(f"{path}.kind", f"Must be one of {', '.join(STATE_KINDS)}.")
        if isinstance(key, str):
            kinds.setdefault(key, kind)
        state = {"key": key, "label": _text(raw_state, "label", f"{path}.label", errors, required=True, max_length=200)}
        state_description = _text(
            raw_state, "description", f"{path}.description", errors, required=False, max_length=2000
        )
        if state_description:
            state["description"] = state_description
        state["kind"] = kind
        expected_within = _duration(raw_state, "expected_within", f"{path}.expected_within", errors)
        if expected_within:
            state["expected_within"] = expected_within
        states.append(state)

    initial_state = raw.get("initial_state")
    if not isinstance(initial_state, str) or not initial_state:
        errors.add("initial_state", "This field is required.")
    elif initial_state not in kinds:
        errors.add("initial_state", f"Unknown state key {initial_state!r}.")
    elif kinds[initial_state] in TERMINAL_KINDS:
        errors.add("initial_state", "The initial state cannot be terminal.")

    transitions: list[dict] = []
    for i, raw_transition in enumerate(_list(raw, "transitions", "transitions", errors)):
        path = f"transitions[{i}]"
        if not isinstance(raw_transition, Mapping):
            errors.add(path, "Must be an object.")
            continue
        event_type = _text(raw_transition, "event", f"{path}.event", errors, required=True, max_length=200)
        sources = raw_transition.get("from")
        if sources == ANY_STATE:
            pass
        elif isinstance(sources, list) and sources:
            for j, source in enumerate(sources):
                if not _is_key_of(source, kinds):
                    errors.add(f"{path}.from[{j}]", f"Unknown state key {source!r}.")
                elif kinds[source] in TERMINAL_KINDS:
                    errors.add(f"{path}.from[{j}]", f"{source!r} is terminal and cannot have outgoing transitions.")
        else:
            errors.add(f"{path}.from", 'Must be a non-empty list of state keys or "*".')
        target = raw_transition.get("to")
        if not _is_key_of(target, kinds):
            errors.add(f"{path}.to", f"Unknown state key {target!r}.")
        transition = {"event": event_type, "from": sources, "to": target}
        if raw_transition.get("when") is not None:
            _compiles(raw_transition["when"], f"{path}.when", errors)
            transition["when"] = raw_transition["when"]
        if raw_transition.get("set") is not None:
            assignments = raw_transition["set"]
            if not isinstance(assignments, Mapping) or not assignments:
                errors.add(f"{path}.set", "Must be a map of context field to JMESPath expression.")
            else:
                for name_, expression in assignments.items():
                    if not isinstance(name_, str) or not name_:
                        errors.add(f"{path}.set", f"Context field names must be non-empty strings, not {name_!r}.")
                        continue
                    _compiles(expression, f"{path}.set.{name_}", errors)
                # Sorted: the fields are independent of each other, and PostgreSQL's jsonb would
                # not keep the written order anyway.
                transition["set"] = dict(sorted(assignments.items(), key=lambda item: str(item[0])))
        transitions.append(transition)

    milestones: list[dict] = []
    grouped: dict[str, str] = {}
    for i, raw_milestone in enumerate(_list(raw, "milestones", "milestones", errors)):
        path = f"milestones[{i}]"
        if not isinstance(raw_milestone, Mapping):
            errors.add(path, "Must be an object.")
            continue
        key = raw_milestone.get("key")
        if not isinstance(key, str) or not STATE_KEY_RE.fullmatch(key):
            errors.add(f"{path}.key", "Must match [a-z0-9_]{1,64}.")
        elif any(m["key"] == key for m in milestones):
            errors.add(f"{path}.key", f"Duplicate milestone key {key!r}.")
        milestone = {
            "key": key,
            "label": _text(raw_milestone, "label", f"{path}.label", errors, required=True, max_length=200),
        }
        milestone_description = _text(
            raw_milestone, "description", f"{path}.description", errors, required=False, max_length=2000
        )
        if milestone_description:
            milestone["description"] = milestone_description
        member_states = _list(raw_milestone, "states", f"{path}.states", errors)
        if not member_states:
            errors.add(f"{path}.states", "List at least one state.")
        for j, state_key in enumerate(member_states):
            if not _is_key_of(state_key, kinds):
                errors.add(f"{path}.states[{j}]", f"Unknown state key {state_key!r}.")
            elif state_key in grouped:
                errors.add(
                    f"{path}.states[{j}]", f"State {state_key!r} is already in milestone {grouped[state_key]!r}."
                )
            else:
                grouped[state_key] = key
        milestone["states"] = member_states
        milestones.append(milestone)

    display: list[dict] = []
    for i, raw_display in enumerate(_list(raw, "display", "display", errors)):
        path = f"display[{i}]"
        if not isinstance(raw_display, Mapping):
            errors.add(path, "Must be an object.")
            continue
        field_name = _text(raw_display, "field", f"{path}.field", errors, required=True, max_length=100)
        if field_name and any(d["field"] == field_name for d in display):
            errors.add(f"{path}.field", f"Duplicate display field {field_name!r}.")
        display.append(
            {
                "field": field_name,
                "label": _text(raw_display, "label", f"{path}.label", errors, required=True, max_length=200),
            }
        )

    if not errors.errors:
        graph = _successors(kinds, transitions)
        reachable = reachable_from(initial_state, graph)
        for i, state in enumerate(states):
            if state["key"] not in reachable:
                errors.add(f"states[{i}].key", f"State {state['key']!r} is unreachable from {initial_state!r}.")

    if errors.errors:
        raise DefinitionError(errors.errors)
    return {
        "id": model_id,
        "name": name,
        "description": description,
        "handler": handler,
        "initial_state": initial_state,
        "start_events": list(start_events),
        "park_ttl": park_ttl,
        "states": states,
        "transitions": transitions,
        "milestones": milestones,
        "display": display,
    }


_KEY_ORDER = {
    "document": (
        "id",
        "name",
        "description",
        "handler",
        "initial_state",
        "start_events",
        "park_ttl",
        "states",
        "transitions",
        "milestones",
        "display",
    ),
    "states": ("key", "label", "description", "kind", "expected_within"),
    "transitions": ("event", "from", "to", "when", "set"),
    "milestones": ("key", "label", "description", "states"),
    "display": ("field", "label"),
}


def canonical_order(document: Mapping) -> dict:
    """A valid document with its keys in the canonical order again.

    PostgreSQL's jsonb stores object keys in an order of its own, so a document read back from a
    ModelVersion is put in this order before it is exported or shown: the same model gives the
    same bytes on every database.
    """

    def ordered(entry: Mapping, kind: str) -> dict:
        return {key: entry[key] for key in _KEY_ORDER[kind] if key in entry}

    result = ordered(document, "document")
    for kind in ("states", "transitions", "milestones", "display"):
        if isinstance(result.get(kind), list):
            result[kind] = [ordered(entry, kind) for entry in result[kind]]
    for transition in result.get("transitions", []):
        if isinstance(transition.get("set"), Mapping):
            transition["set"] = dict(sorted(transition["set"].items()))
    return result


def _successors(kinds: Mapping[str, str], transitions: list[dict]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {key: set() for key in kinds}
    for transition in transitions:
        sources = transition["from"]
        if sources == ANY_STATE:
            sources = [key for key, kind in kinds.items() if kind not in TERMINAL_KINDS]
        for source in sources:
            graph[source].add(transition["to"])
    return graph


def reachable_from(start: str, graph: Mapping[str, set[str]]) -> set[str]:
    """The states reachable from ``start`` (itself included) in a graph of successors."""
    seen = {start}
    frontier = [start]
    while frontier:
        for successor in graph[frontier.pop()]:
            if successor not in seen:
                seen.add(successor)
                frontier.append(successor)
    return seen


def evaluate(expression: Any, envelope: Mapping) -> Any:
    """A compiled expression's value on an envelope; null when it fails on this envelope.

    A valid expression can still fail on some events (``contains(data.tags, 'x')`` when an event
    has no tags); such an event must be decided like any other, not stop its instance's worker.
    """
    try:
        return expression.search(envelope)
    except JMESPathError:
        return None


@dataclass(frozen=True)
class CompiledTransition:
    event: str
    sources: frozenset[str] | None  # None: any non-terminal state
    target: str
    when: Any = None
    assignments: tuple[tuple[str, Any], ...] = ()

    def leaves(self, state: str, definition: Definition) -> bool:
        if self.sources is None:
            return not definition.is_terminal(state)
        return state in self.sources

    def condition_holds(self, envelope: Mapping) -> bool:
        return self.when is None or is_truthy(evaluate(self.when, envelope))

    def context_updates(self, envelope: Mapping) -> dict:
        return {name: evaluate(expression, envelope) for name, expression in self.assignments}


@dataclass(frozen=True)
class Definition:
    """A validated document made ready for handlers: compiled expressions, lookups, reachability."""

    document: dict
    transitions: tuple[CompiledTransition, ...] = field(default=())

    @classmethod
    def from_document(cls, document: dict) -> Definition:
        compiled = tuple(
            CompiledTransition(
                event=t["event"],
                sources=None if t["from"] == ANY_STATE else frozenset(t["from"]),
                target=t["to"],
                when=jmespath.compile(t["when"]) if t.get("when") else None,
                assignments=tuple((name, jmespath.compile(expr)) for name, expr in (t.get("set") or {}).items()),
            )
            for t in document["transitions"]
        )
        return cls(document=canonical_order(document), transitions=compiled)

    @property
    def id(self) -> str:
        return self.document["id"]

    @property
    def initial_state(self) -> str:
        return self.document["initial_state"]

    @cached_property
    def kinds(self) -> dict[str, str]:
        return {state["key"]: state["kind"] for state in self.document["states"]}

    @cached_property
    def park_ttl(self) -> timedelta:
        return parse_iso_duration(self.document["park_ttl"])

    @cached_property
    def expected_within(self) -> dict[str, timedelta]:
        """How long an instance is expected to stay in each state that says so."""
        return {
            state["key"]: parse_iso_duration(state["expected_within"])
            for state in self.document["states"]
            if state.get("expected_within")
        }

    def is_terminal(self, state: str) -> bool:
        return self.kinds[state] in TERMINAL_KINDS

    def may_start(self, event_type: str) -> bool:
        start_events = self.document["start_events"]
        return not start_events or event_type in start_events

    def transitions_for(self, event_type: str) -> list[CompiledTransition]:
        return [t for t in self.transitions if t.event == event_type]

    @cached_property
    def _reachable(self) -> dict[str, set[str]]:
        graph = _successors(self.kinds, self.document["transitions"])
        return {state: reachable_from(state, graph) for state in self.kinds}

    def can_reach(self, current: str, other: str) -> bool:
        return other in self._reachable[current]


def milestone_groups(document: Mapping[str, Any]) -> list[dict]:
    """The model's milestones in order, each ``{key, label, description, states}``; without
    ``milestones``, every ``step`` state is its own (docs/spec/status-models.md)."""
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
