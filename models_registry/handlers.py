"""Transition handlers: f(definition, state, context, event) -> Decision.

A handler is a pure function: it reads the model definition, the instance's current state and
context and the event envelope, and returns what should happen. It never touches the database,
so it can be unit- and property-tested alone. Handlers are registered by name with
``@register_handler``; a model picks one by name (``handler:`` in its document). Businesses add
their own in a module listed in the ``STATUSTRACKER_HANDLER_MODULES`` setting. A registration also
says, for the people choosing a handler, what it does and which event data it reads:
``handler_catalogue()`` lists that for the designer and ``GET /api/v1/handlers``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from models_registry.definition import Definition

APPLY: Literal["apply"] = "apply"
PARK: Literal["park"] = "park"
IGNORE: Literal["ignore"] = "ignore"


@dataclass(frozen=True)
class Decision:
    outcome: Literal["apply", "park", "ignore"]
    target: str | None = None
    context_updates: dict = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class HandlerInfo:
    """What a person choosing a handler is told about it.

    ``reads`` maps an event type (``"*"``: every type) to the fields of the event's ``data`` the
    handler reads for it, dotted for nested ones; empty when the handler declared none.
    """

    name: str
    description: str
    reads: dict[str, list[str]] = field(default_factory=dict)


Handler = Callable[[Definition, str, Mapping, Mapping], Decision]
_HANDLERS: dict[str, Handler] = {}
_IGNORES_SOURCES: set[str] = set()
_DESCRIPTIONS: dict[str, str] = {}
_READS: dict[str, dict[str, tuple[str, ...]]] = {}


def register_handler(
    name: str,
    *,
    follows_sources: bool = True,
    description: str | None = None,
    reads: Mapping[str, Iterable[str]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler under ``name``.

    A handler may only move an instance to the target of a transition declared for the event's
    type. ``follows_sources=False`` declares that it does not consult the transitions' ``from``
    lists (``forward_only``); otherwise the move must also leave a state the transition lists.
    The instance's django-fsm transition checks both before anything is written.

    ``description`` is what the admin's handler choice and the API show; by default the first
    paragraph of the function's docstring. ``reads`` declares the event data the handler reads,
    ``{event type: [data fields]}`` (``"*"`` for every event type; an empty list for a type whose
    data it does not read), so that whoever designs a model knows what its producers must send.
    It is shown, not enforced.
    """
    if description is not None and not isinstance(description, str):
        raise TypeError(f"Handler {name!r}: description must be a string.")
    declared_reads = _reads_checked(name, reads or {})

    def decorator(function: Handler) -> Handler:
        if name in _HANDLERS and _HANDLERS[name] is not function:
            raise ValueError(f"A transition handler named {name!r} is already registered.")
        _HANDLERS[name] = function
        if not follows_sources:
            _IGNORES_SOURCES.add(name)
        _DESCRIPTIONS[name] = _first_paragraph(inspect.getdoc(function)) if description is None else description
        _READS[name] = declared_reads
        return function

    return decorator


def _reads_checked(name: str, reads: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    # A mistake here is the handler author's, found when their module is imported at start-up.
    if not isinstance(reads, Mapping):
        raise TypeError(f"Handler {name!r}: reads must map event types to lists of data fields.")
    checked = {}
    for event_type, fields in reads.items():
        if not isinstance(event_type, str) or not event_type:
            raise TypeError(f"Handler {name!r}: an event type in reads must be a non-empty string.")
        # A bare string would read as a list of one-letter fields.
        names = list(fields) if isinstance(fields, Iterable) and not isinstance(fields, str) else [None]
        if not all(isinstance(field_name, str) and field_name for field_name in names):
            raise TypeError(f"Handler {name!r}: reads[{event_type!r}] must be a list of data field names.")
        checked[event_type] = tuple(dict.fromkeys(names))
    return checked


def _first_paragraph(docstring: str | None) -> str:
    paragraph = (docstring or "").strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def get_handler(name: str) -> Handler:
    return _HANDLERS[name]


def handler_follows_sources(name: str) -> bool:
    return name not in _IGNORES_SOURCES


def handler_names() -> list[str]:
    return sorted(_HANDLERS)


def handler_catalogue() -> list[HandlerInfo]:
    """Every registered handler with its description and declared reads, by name."""
    return [
        HandlerInfo(
            name=name,
            description=_DESCRIPTIONS[name],
            reads={event_type: list(fields) for event_type, fields in _READS[name].items()},
        )
        for name in sorted(_HANDLERS)
    ]


def move_is_declared(*, definition: Definition, handler: str, source: str, target: str, event: Mapping) -> bool:
    """Whether ``definition`` allows an event to move an instance from ``source`` to ``target``.

    A transition for the event's type must lead there, with its ``when`` holding for the event and,
    unless ``handler`` is registered with ``follows_sources=False``, leaving ``source``; terminal
    states are never left. The instance's django-fsm transition and "Try it" both ask this.
    """
    if source not in definition.kinds or definition.is_terminal(source) or target not in definition.kinds:
        return False
    follows_sources = handler_follows_sources(handler)
    return any(
        transition.target == target
        and (not follows_sources or transition.leaves(source, definition))
        and transition.condition_holds(event)
        for transition in definition.transitions_for(event["event_type"])
    )


@register_handler("declarative")
def declarative(definition: Definition, state: str, context: Mapping, event: Mapping) -> Decision:
    """The model's transition table, as the spec says: an event follows the first transition for its
    type that leaves the instance's state and whose "when" condition holds. An event that a later
    state could still take waits (is parked) until the instance gets there; any other is ignored.
    It reads only the event data that the model's own "when" and "set" expressions name.
    """
    if definition.is_terminal(state):
        return Decision(IGNORE, reason=f"instance is in terminal state {state!r}")
    candidates = definition.transitions_for(event["event_type"])
    for transition in candidates:
        if transition.leaves(state, definition) and transition.condition_holds(event):
            return Decision(APPLY, target=transition.target, context_updates=transition.context_updates(event))
    for transition in candidates:
        if not transition.condition_holds(event):
            continue
        sources = transition.sources if transition.sources is not None else definition.kinds
        if any(
            source != state and not definition.is_terminal(source) and definition.can_reach(state, source)
            for source in sources
        ):
            return Decision(PARK, reason=f"waits for the instance to reach a state that {event['event_type']!r} leaves")
    if not candidates:
        return Decision(IGNORE, reason=f"no transition for {event['event_type']!r}")
    return Decision(IGNORE, reason=f"no transition for {event['event_type']!r} applies from {state!r} or later")


@register_handler("forward_only", follows_sources=False)
def forward_only(definition: Definition, state: str, context: Mapping, event: Mapping) -> Decision:
    """Furthest step wins, for sources that report out of order, such as parcel carriers: an event
    only ever moves the instance forward in the model's order of states, and one for an earlier step
    is ignored. Nothing is parked, and transitions' "from" lists are not consulted. It reads only
    the event data that the model's own "when" and "set" expressions name.

    The target is that of the first entry for the event's type whose ``when`` holds, wherever the
    instance is; it counts as forward when it comes later in the state order, or is an exception,
    success or failure state.
    """
    if definition.is_terminal(state):
        return Decision(IGNORE, reason=f"instance is in terminal state {state!r}")
    order = list(definition.kinds)
    for transition in definition.transitions_for(event["event_type"]):
        if not transition.condition_holds(event):
            continue
        target = transition.target
        if definition.kinds[target] != "step" or definition.kinds[state] == "exception":
            moves_forward = target != state
        else:
            moves_forward = order.index(target) > order.index(state)
        if moves_forward:
            return Decision(APPLY, target=target, context_updates=transition.context_updates(event))
        return Decision(IGNORE, reason=f"{target!r} is not after {state!r}")
    return Decision(IGNORE, reason=f"no transition for {event['event_type']!r}")
