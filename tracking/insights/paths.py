"""The paths instances took, as a directly-follows graph drawn like the model's diagram.

The graph is a ``models_registry.diagram.Diagram``: the same DOT writer, colours and shapes, and
the same drawing in the browser (Graphviz through ``static/models_registry/diagram.js``). Its
nodes are the states that the figures' history touched, with the instances in each now; its edges
are the pairs of states one directly after the other, labelled with how often, and drawn thicker
the more often they were taken.
"""

from __future__ import annotations

import math

from models_registry.definition import STATE_KINDS
from models_registry.diagram import Diagram, DiagramEdge, DiagramState
from tracking.insights.figures import Dashboard

THINNEST, THICKEST = 1.0, 6.0


def _width(count: int, most: int) -> float:
    # Logarithmic: a path taken 10,000 times beside one taken 3 times keeps both visible.
    if most <= 1:
        return THINNEST
    return THINNEST + (THICKEST - THINNEST) * math.log(count) / math.log(most)


def paths_diagram(dashboard: Dashboard) -> Diagram:
    touched = {state for pair in dashboard.follows for state in pair} | set(dashboard.starts)
    states = tuple(
        DiagramState(
            key=state.key,
            label=state.label,
            kind=state.kind,
            initial=state.key == dashboard.initial_state,
            count=state.now,
        )
        for state in dashboard.states
        if state.key in touched or state.now
    )
    most = max(dashboard.follows.values(), default=1)
    edges = tuple(
        DiagramEdge(source, target, (f"{count:,}",), width=_width(count, most))
        for (source, target), count in sorted(dashboard.follows.items(), key=lambda item: -item[1])
    )
    used = tuple(kind for kind in STATE_KINDS if any(state.kind == kind for state in states))
    return Diagram(states=states, edges=edges, counts_shown=True, kinds_used=used)
