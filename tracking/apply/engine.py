"""What happens to an instance's open events, as the spec's "What happens to an event" says.

Pure Python, no ORM: given the model definition, the instance's handler, its current state and
context, and its open events in arrival order (pending ones and those parked earlier), it
returns the outcome of each event and the transitions taken. The worker service feeds it rows
and writes back what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from models_registry.definition import Definition
from models_registry.handlers import APPLY, PARK, Handler

APPLIED, PARKED, IGNORED = "applied", "parked", "ignored"


@dataclass
class OpenEvent:
    key: int  # arrival order
    envelope: Mapping
    parked: bool = False


@dataclass
class Step:
    """A transition taken: creation has ``from_state`` empty."""

    event_key: int
    from_state: str
    to_state: str
    context_updates: dict = field(default_factory=dict)  # what the transition stored in the context


@dataclass
class Result:
    state: str  # "" while not started
    context: dict
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)  # event key -> (status, reason)
    steps: list[Step] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def run(
    *,
    definition: Definition,
    handler: Handler,
    state: str,
    context: Mapping,
    events: Sequence[OpenEvent],
    state_changed: bool = False,
) -> Result:
    """Decide the open events; ``state_changed`` says the state just changed by other means
    (a manual transition, a version migration), so parked events are tried again first."""
    result = Result(state=state, context=dict(context))
    parked = sorted((e for e in events if e.parked), key=lambda e: e.key)
    if state_changed:
        _retry_parked(parked, definition, handler, result)
    for event in sorted((e for e in events if not e.parked), key=lambda e: e.key):
        if _offer(event, definition, handler, result):
            _retry_parked(parked, definition, handler, result)
        elif result.outcomes[event.key][0] == PARKED:
            parked.append(event)
    return result


def _retry_parked(parked: list[OpenEvent], definition: Definition, handler: Handler, result: Result) -> None:
    """After a transition, parked events are tried again in arrival order until none applies."""
    progress = True
    while progress:
        progress = False
        for event in sorted(parked, key=lambda e: e.key):
            applied = _offer(event, definition, handler, result)
            if result.outcomes[event.key][0] != PARKED:
                parked.remove(event)
            if applied:
                progress = True
                break


def _offer(event: OpenEvent, definition: Definition, handler: Handler, result: Result) -> bool:
    """Decide one event; record its outcome; return True when it changed the instance."""
    envelope = event.envelope
    if not result.state:
        if not definition.may_start(envelope["event_type"]):
            result.outcomes[event.key] = (PARKED, "no instance yet and this event type cannot start one")
            return False
        result.state = definition.initial_state
        result.steps.append(Step(event.key, "", result.state))
        result.outcomes[event.key] = (APPLIED, "created the instance")
        decision = handler(definition, result.state, result.context, envelope)
        if decision.outcome == APPLY:
            _take(event, decision, definition, result)
        return True
    decision = handler(definition, result.state, result.context, envelope)
    if decision.outcome == APPLY:
        result.outcomes[event.key] = (APPLIED, "")
        _take(event, decision, definition, result)
        return True
    result.outcomes[event.key] = (PARKED if decision.outcome == PARK else IGNORED, decision.reason)
    return False


def _take(event: OpenEvent, decision, definition: Definition, result: Result) -> None:
    if decision.target not in definition.kinds:
        raise ValueError(f"the handler chose {decision.target!r}, which is not a state of {definition.id!r}")
    result.steps.append(Step(event.key, result.state, decision.target, dict(decision.context_updates)))
    result.state = decision.target
    result.context.update(decision.context_updates)
