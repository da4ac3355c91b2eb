""" "Try it": what a model version, or a draft, would do with one event, for an instance that is not stored.

Pure Python, no ORM, like the engine it runs. The decision is ``engine.run``'s, with the handler the
definition names, exactly as ``tracking.apply.applier.ApplyBatch.run`` calls it for a worker; this
module only says what came out, and stores nothing. A move the instance's django-fsm transition
would refuse (a handler choosing a move the definition does not declare) is reported as ``failed``,
as the workers would mark that event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from models_registry.definition import Definition
from models_registry.handlers import APPLY, Decision, get_handler, move_is_declared
from tracking.apply import engine

CREATED, APPLIED, PARKED, IGNORED, FAILED = "created", "applied", "parked", "ignored", "failed"
OUTCOMES = (CREATED, APPLIED, PARKED, IGNORED, FAILED)
# The key of the one event offered to the engine (its place in arrival order, which is all it means).
_EVENT = 1


@dataclass(frozen=True)
class Trial:
    """What the event would do. ``from_state`` and ``to_state`` are None while there is no instance."""

    outcome: str
    reason: str
    from_state: str | None
    to_state: str | None
    steps: list[engine.Step] = field(default_factory=list)  # a creation has from_state ""
    context_updates: dict = field(default_factory=dict)  # what the applied transition's ``set`` stored
    context: dict = field(default_factory=dict)  # the instance's context afterwards
    waits_for: list[str] = field(default_factory=list)  # parked: states from which the event would apply


def event_try(*, definition: Definition, state: str, context: Mapping, envelope: Mapping) -> Trial:
    """Decide ``envelope`` for an instance in ``state`` ("" for none yet) with ``context``.

    ``envelope`` is in the native form the inbox stores (``Envelope.as_document``): ``when`` and
    ``set`` expressions read it. ``state`` must be "" or a state of ``definition``.
    """
    if state and state not in definition.kinds:
        raise ValueError(f"{state!r} is not a state of {definition.id!r}")
    before = state or None
    decisions: list[Decision] = []
    try:
        handler = get_handler(definition.document["handler"])

        def observed(definition_: Definition, state_: str, context_: Mapping, event: Mapping) -> Decision:
            # The handler's decision passes through untouched; kept to report its context updates.
            decision = handler(definition_, state_, context_, event)
            decisions.append(decision)
            return decision

        result = engine.run(
            definition=definition,
            handler=observed,
            state=state,
            context=context,
            events=[engine.OpenEvent(_EVENT, envelope)],
        )
        _check_moves(definition, result.steps, envelope)
    except Exception as exc:  # as a worker does: whatever a business's handler raises fails the event
        return Trial(FAILED, f"{type(exc).__name__}: {exc}", before, before, context=dict(context))

    status, reason = result.outcomes[_EVENT]
    after = result.state or None
    if status == engine.APPLIED:
        updates: dict = {}
        for decision in decisions:
            if decision.outcome == APPLY:
                updates.update(decision.context_updates)
        created = not result.steps[0].from_state
        return Trial(CREATED if created else APPLIED, reason, before, after, result.steps, updates, result.context)
    waits_for = _waits_for(definition, state, envelope) if status == engine.PARKED else []
    return Trial(status, reason, before, after, context=result.context, waits_for=waits_for)


def _check_moves(definition: Definition, steps: list[engine.Step], envelope: Mapping) -> None:
    """Refuse what the instance's ``apply_event`` transition would refuse (``ProcessInstance``)."""
    for step in steps:
        if step.from_state and not move_is_declared(
            definition=definition,
            handler=definition.document["handler"],
            source=step.from_state,
            target=step.to_state,
            event=envelope,
        ):
            raise ValueError(
                f"the handler chose {step.from_state!r} -> {step.to_state!r} for {envelope['event_type']!r}, "
                "a move the model does not declare"
            )


def _waits_for(definition: Definition, state: str, envelope: Mapping) -> list[str]:
    """The states, in the model's order, that the instance can still reach and that a transition
    for this event (its ``when`` holding) leaves; an instance not created yet starts from the initial
    state. An explanation of the engine's decision, not a second decision: a handler of a business's
    own may park for reasons of its own, and then this list may be empty."""
    start = state or definition.initial_state
    transitions = [t for t in definition.transitions_for(envelope["event_type"]) if t.condition_holds(envelope)]
    return [
        key
        for key in definition.kinds
        if key != state
        and definition.can_reach(start, key)
        and any(transition.leaves(key, definition) for transition in transitions)
    ]
