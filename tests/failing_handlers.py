"""Handlers that fail for chosen events, for the tests of failure isolation (worker processes import
this module through STATUSTRACKER_HANDLER_MODULES).

``explodes_until_fixed`` raises for an event whose data has ``"explode": true`` until a file
``fixed`` exists in the folder named by ``FAILING_HANDLER_DIR``: a bug, then its fix.
``jumps_ahead`` moves an event with ``"jump": true`` to ``delivered``, which no transition for
that event type declares: a move the definition does not allow.
"""

from __future__ import annotations

import os
from pathlib import Path

from models_registry.handlers import APPLY, Decision, declarative, register_handler

FAILING_HANDLER_DIR = "FAILING_HANDLER_DIR"


def fix(directory: Path) -> None:
    (directory / "fixed").touch()


@register_handler("explodes_until_fixed", reads={"*": ["explode"]})
def explodes_until_fixed(definition, state, context, event):
    """As declarative, but raises for an event whose data has "explode": true until a file "fixed"
    exists in the folder FAILING_HANDLER_DIR names: a bug, then its fix."""
    fixed = Path(os.environ.get(FAILING_HANDLER_DIR, "/nonexistent")) / "fixed"
    if event.get("data", {}).get("explode") and not fixed.exists():
        raise RuntimeError(f"cannot decide {event['event_id']} yet")
    return declarative(definition, state, context, event)


@register_handler("jumps_ahead", reads={"*": ["jump"]})
def jumps_ahead(definition, state, context, event):
    """As declarative, but an event whose data has "jump": true moves the instance to "delivered",
    a move no transition declares."""
    if event.get("data", {}).get("jump"):
        return Decision(APPLY, target="delivered")
    return declarative(definition, state, context, event)
