"""Transition handlers for tests that propose moves a model's definition may not allow.

Registered when this module is imported. ``puppet`` decides exactly as ``declarative``, except
for an event whose ``data.move_to`` is set: then it applies that target, whatever the instance's
state and whatever the model's transitions say, as a business's own handler with a bug might.
``puppet_ignoring_sources`` is the same function registered with ``follows_sources=False`` (as
``forward_only`` is): its moves need not leave a state the transition's ``from`` lists.
"""

from __future__ import annotations

from models_registry.handlers import APPLY, Decision, declarative, register_handler


def _puppet(definition, state, context, event):
    """As declarative, but an event whose data has "move_to" applies that target, whatever the
    instance's state and the model's transitions say."""
    target = (event.get("data") or {}).get("move_to")
    if target is None:
        return declarative(definition, state, context, event)
    return Decision(APPLY, target=target)


register_handler("puppet", reads={"*": ["move_to"]})(_puppet)
register_handler(
    "puppet_ignoring_sources",
    follows_sources=False,
    description='As puppet, registered as not following the transitions\' "from" lists (as forward_only is).',
    reads={"*": ["move_to"]},
)(_puppet)
