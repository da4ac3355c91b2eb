"""Transition handlers: f(definition, state, context, event) -> Decision.

A handler is a pure function: it reads the model definition, the instance's current state and
context and the event envelope, and returns what should happen. It never touches the database,
so it can be unit- and property-tested alone. Handlers are registered by name with
``@register_handler``; a model picks one by name (``handler:`` in its document). Businesses add
their own in a module listed in the ``STATUSTRACKER_HANDLER_MODULES`` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


Handler = Callable[[Definition, str, Mapping, Mapping], Decision]
_HANDLERS: dict[str, Handler] = {}
_IGNORES_SOURCES: set[str] = set()


def register_handler(name: str, *, follows_sources: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler under ``name``.

    A handler may only move an instance to the target of a transition declared for the event's
    type. ``follows_sources=False`` declares that it does not consult the transitions' ``from``
    lists (``forward_only``); otherwise the move must also leave a state the transition lists.
    The instance's django-fsm transition checks both before anything is written.
    """

    def decorator(function: Handler) -> Handler:
        if name in _HANDLERS and _HANDLERS[name] is not function:
            raise ValueError(f"A transition handler named {name!r} is already registered.")
        _HANDLERS[name] = function
        if not follows_sources:
            _IGNORES_SOURCES.add(name)
        return function

    return decorator


def get_handler(name: str) -> Handler:
    return _HANDLERS[name]


def handler_follows_sources(name: str) -> bool:
    return name not in _IGNORES_SOURCES


def handler_names() -> list[str]:
    return sorted(_HANDLERS)


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
    """The spec's transition table: first matching entry wins; park what can still apply later."""
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
    """Furthest step wins: for sources that report scans out of order (parcel carriers).

    An event moves the instance to the target of the first entry for its type whose ``when``
    holds, wherever the instance is, provided the target comes later in the model's state order
    (or is an exception, success or failure state). An event for an earlier step is stale and
    ignored; nothing is ever parked. ``from`` lists are not consulted.
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
