"""A transition handler for tests that can hold a worker inside a task, at a gate the test opens.

Registered as ``gated`` when this module is imported (workers import it through
``STATUSTRACKER_HANDLER_MODULES=tests.gated_handler``). With ``GATED_HANDLER_DIR`` set, every
call appends "<pid> <event_id>" to ``<dir>/entered`` and then waits until ``<dir>/open`` exists;
it then decides exactly as ``declarative``. Tests use it to know that a worker has taken a task
and holds an instance's row lock, without guessing with sleeps. Without the variable it is
``declarative`` under another name.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from models_registry.handlers import declarative, register_handler

GATE_ENV = "GATED_HANDLER_DIR"
# A safety valve so that a forgotten gate cannot hang a worker for ever; tests open the gate.
LONGEST_WAIT_SECONDS = 120


@register_handler("gated")
def gated(definition, state, context, event):
    """As declarative, but with GATED_HANDLER_DIR set it waits inside the call until the test opens
    the gate, so that a test knows a worker holds an instance's row lock."""
    gate = os.environ.get(GATE_ENV)
    if gate:
        directory = Path(gate)
        with open(directory / "entered", "a") as log:
            log.write(f"{os.getpid()} {event['event_id']}\n")
        give_up = time.monotonic() + LONGEST_WAIT_SECONDS
        while not (directory / "open").exists() and time.monotonic() < give_up:
            time.sleep(0.02)
    return declarative(definition, state, context, event)


def entered(directory: Path) -> list[tuple[int, str]]:
    """The calls made so far: (process id, event id), in order."""
    path = directory / "entered"
    if not path.exists():
        return []
    return [(int(pid), event_id) for pid, event_id in (row.split(" ", 1) for row in path.read_text().splitlines())]


def open_gate(directory: Path) -> None:
    (directory / "open").touch()


@register_handler("failing_for_x")
def failing_for_x(definition, state, context, event):
    """As declarative, but raises for transaction "X": a handler with a bug, as a business's own
    handler may have."""
    if event["transaction_id"] == "X":
        raise ValueError("this handler cannot decide transaction X")
    return declarative(definition, state, context, event)
