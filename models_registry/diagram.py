"""The picture of a status model: its states and transitions as a graph, and that graph in DOT.

Pure Python (no ORM), so that every page that draws a model asks the same function: a published
version's admin page today, the designer's form (a draft, possibly invalid) and the operator's
instance page later. The browser lays the DOT out with Graphviz (``@viz-js/viz``, served from
``static/vendor``); ``static/models_registry/diagram.js`` marks each state's SVG element with
``data-state``.

Drafts are drawn as they are: a state no transition reaches from the initial state is flagged
``unreachable`` instead of refused, and entries that name unknown states are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models_registry.definition import ANY_STATE, STATE_KINDS, TERMINAL_KINDS, Definition, reachable_from

# The node that stands for `from: "*"`: one box with one edge per such transition, instead of an
# edge from every open state (a 30-state model would get hundreds of crossing edges).
ANY_STATE_NODE = "*"
WHEN_LABEL_LENGTH = 48
DOT_LINE_BREAK = "\\n"  # a centred line break inside a DOT label

KIND_COLOURS = {
    # fill, border: light fills that keep black text readable, borders that tell kinds apart
    # without colour too (see the shapes below).
    "step": ("#e8f0fe", "#3b6fb6"),
    "success": ("#e3f4e1", "#2e7d32"),
    "failure": ("#fde7e7", "#c62828"),
    "exception": ("#fff4d6", "#b26a00"),
}
KIND_TEXT = {
    "step": "step (a milestone)",
    "success": "success (terminal)",
    "failure": "failure (terminal)",
    "exception": "exception (a detour, square corners)",
}
# An instance's way through the model: its states' borders and the edges it took, in one colour.
PATH_COLOUR = "#1565c0"
# Exceptions have square corners, terminal states a double border: kinds differ in more than colour.
KIND_STYLES = {"step": "rounded,filled", "success": "rounded,filled", "failure": "rounded,filled"}


@dataclass(frozen=True)
class DiagramState:
    key: str
    label: str
    kind: str
    initial: bool = False
    unreachable: bool = False
    count: int | None = None  # instances in this state now, when the page knows
    current: bool = False  # an instance's page: the state it is in
    visited: bool = False  # an instance's page: a state its path went through


@dataclass(frozen=True)
class DiagramEdge:
    source: str  # a state key, or ANY_STATE_NODE
    target: str
    events: tuple[str, ...]  # one line per transition between these two, "event [when …]"
    width: float | None = None  # the line's width in points, when it stands for an amount (a count)
    taken: bool = False  # an instance's page: its path went this way


@dataclass(frozen=True)
class Diagram:
    states: tuple[DiagramState, ...]
    edges: tuple[DiagramEdge, ...]
    counts_shown: bool = False
    kinds_used: tuple[str, ...] = field(default=())
    path_shown: bool = False

    @property
    def has_any_state_edges(self) -> bool:
        return any(edge.source == ANY_STATE_NODE for edge in self.edges)

    @property
    def terminal_shown(self) -> bool:
        return any(kind in TERMINAL_KINDS for kind in self.kinds_used)

    @property
    def legend(self) -> list[dict[str, str]]:
        """The kinds this diagram uses, with the colours it draws them in."""
        return [
            {"kind": kind, "fill": KIND_COLOURS[kind][0], "border": KIND_COLOURS[kind][1], "text": KIND_TEXT[kind]}
            for kind in self.kinds_used
        ]

    @property
    def unreachable(self) -> tuple[str, ...]:
        return tuple(state.key for state in self.states if state.unreachable)

    def to_dot(self) -> str:
        return diagram_dot(self)


def _short(text: str, length: int = WHEN_LABEL_LENGTH) -> str:
    text = " ".join(text.split())
    # ASCII only: Graphviz sizes labels with its own font metrics, which know no other characters.
    return text if len(text) <= length else text[: length - 3] + "..."


def transition_label(transition: Mapping) -> str:
    """``event``, or ``event`` and ``when …`` on a second line, a long condition cut short."""
    event = str(transition.get("event") or "?")
    when = transition.get("when")
    return f"{event}\nwhen {_short(str(when))}" if when else event


def _entries(document: Mapping, section: str) -> list[Mapping]:
    """The objects of a list section; a draft may hold anything there, and is drawn all the same."""
    entries = document.get(section)
    return [entry for entry in entries if isinstance(entry, Mapping)] if isinstance(entries, list) else []


def model_diagram(
    model: Definition | Mapping[str, Any],
    *,
    counts: Mapping[str, int] | None = None,
    current: str | None = None,
    path: Sequence[tuple[str, str]] = (),
) -> Diagram:
    """The graph of a status model document (or a compiled Definition), with instance counts if given.

    ``counts`` maps state keys to how many instances are in them now; states missing from it show 0.
    ``current`` and ``path`` (the transitions an instance took, (from, to), creation left out) mark
    one instance's state and the way it came.
    """
    document = model.document if isinstance(model, Definition) else model
    raw_states = [s for s in _entries(document, "states") if isinstance(s.get("key"), str)]
    kinds: dict[str, str] = {}
    for state in raw_states:
        kind = state.get("kind") or "step"
        kinds.setdefault(state["key"], kind if kind in STATE_KINDS else "step")
    open_states = [key for key, kind in kinds.items() if kind not in TERMINAL_KINDS]
    initial = document.get("initial_state") if isinstance(document.get("initial_state"), str) else None

    # (source, target) -> transition labels, in the document's order; sources are expanded for
    # reachability only, the drawing keeps "*" as one node.
    grouped: dict[tuple[str, str], list[str]] = {}
    successors: dict[str, set[str]] = {key: set() for key in kinds}
    for transition in _entries(document, "transitions"):
        if not isinstance(transition.get("to"), str) or transition["to"] not in kinds:
            continue
        target = transition["to"]
        sources = transition.get("from")
        if sources == ANY_STATE:
            drawn = [ANY_STATE_NODE]
            expanded = open_states
        elif isinstance(sources, list):
            drawn = expanded = [s for s in sources if isinstance(s, str) and s in kinds]
        else:
            continue
        for source in expanded:
            successors[source].add(target)
        for source in drawn:
            labels = grouped.setdefault((source, target), [])
            label = transition_label(transition)
            if label not in labels:
                labels.append(label)

    reachable = reachable_from(initial, successors) if initial in kinds else set()
    taken = {(origin, to) for origin, to in path if origin}
    visited = {state for move in taken for state in move} | ({current} if current else set())

    states = []
    seen: set[str] = set()
    for state in raw_states:
        key = state["key"]
        if key in seen:
            continue
        seen.add(key)
        states.append(
            DiagramState(
                key=key,
                label=str(state.get("label") or key),
                kind=kinds[key],
                initial=key == initial,
                unreachable=key not in reachable,
                count=None if counts is None else int(counts.get(key, 0)),
                current=key == current,
                visited=key in visited,
            )
        )
    edges = tuple(
        DiagramEdge(source, target, tuple(labels), taken=_taken(source, target, taken, grouped))
        for (source, target), labels in grouped.items()
    )
    used = tuple(kind for kind in STATE_KINDS if any(state.kind == kind for state in states))
    return Diagram(
        states=tuple(states),
        edges=edges,
        counts_shown=counts is not None,
        kinds_used=used,
        path_shown=current is not None or bool(path),
    )


def _taken(source: str, target: str, taken: set[tuple[str, str]], drawn: Mapping[tuple[str, str], Any]) -> bool:
    """Whether an instance's path went along this edge; a move that no edge of its own draws went
    along the "from any open state" edge to its target."""
    if source != ANY_STATE_NODE:
        return (source, target) in taken
    return any(to == target and (origin, to) not in drawn for origin, to in taken)


def _quote(text: str) -> str:
    """A DOT double-quoted string; backslashes are escapes in labels, so they are doubled."""
    return '"' + _escape(text) + '"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_label(lines: list[str]) -> str:
    """A quoted DOT label of several lines (a line may hold line breaks of its own)."""
    parts = [part for line in lines for part in line.split("\n")]
    return '"' + DOT_LINE_BREAK.join(_escape(part) for part in parts) + '"'


def _node_label(state: DiagramState) -> str:
    lines = [state.label]
    if state.label != state.key:
        lines.append(f"({state.key})")
    if state.count is not None:
        lines.append("1 instance" if state.count == 1 else f"{state.count} instances")
    if state.unreachable:
        lines.append("! unreachable")
    return _dot_label(lines)


def diagram_dot(diagram: Diagram) -> str:
    """The diagram in Graphviz's DOT language, laid out top to bottom.

    Node names are the state keys, so Graphviz's SVG carries each key in the node's ``<title>``;
    classes (``state``, the kind, ``initial``, ``unreachable``) let the page style and find them.
    """
    lines = [
        "digraph model {",
        '  graph [rankdir=TB, nodesep=0.35, ranksep=0.45, fontname="Helvetica", bgcolor="transparent"];',
        '  node [fontname="Helvetica", fontsize=12, margin="0.15,0.06", penwidth=1.4];',
        '  edge [fontname="Helvetica", fontsize=10, color="#555555", fontcolor="#333333", arrowsize=0.7];',
    ]
    for state in diagram.states:
        fill, border = KIND_COLOURS[state.kind]
        classes = ["state", f"kind-{state.kind}"]
        style = KIND_STYLES.get(state.kind, "filled")
        penwidth = 1.4
        if state.initial:
            classes.append("initial")
            penwidth = 3
        if state.unreachable:
            classes.append("unreachable")
            style += ",dashed"
            border = "#c62828"
        if state.visited:
            classes.append("visited")
            border, penwidth = PATH_COLOUR, max(penwidth, 2.2)
        if state.current:
            classes.append("current")
            border, penwidth = "#111111", 4
        peripheries = 2 if state.kind in TERMINAL_KINDS else 1
        lines.append(
            f"  {_quote(state.key)} [label={_node_label(state)}, shape=box, "
            f'style="{style}", fillcolor="{fill}", color="{border}", penwidth={penwidth}, '
            f"peripheries={peripheries}, class={_quote(' '.join(classes))}];"
        )
    initial = next((state for state in diagram.states if state.initial), None)
    if initial is not None:
        # A small dot with an arrow into the initial state: the usual mark of a state machine's start.
        lines.append('  "start:" [shape=point, width=0.14, color="#222222", class="start", label=""];')
        lines.append(f'  "start:" -> {_quote(initial.key)} [arrowsize=0.8, color="#222222"];')
    terminal = [state.key for state in diagram.states if state.kind in TERMINAL_KINDS]
    if terminal:
        # Outcomes at the bottom, side by side: a picture read from top (start) to bottom (end).
        lines.append(f"  {{rank=max; {'; '.join(_quote(key) for key in terminal)}}}")
    if diagram.has_any_state_edges:
        lines.append(
            f'  {_quote(ANY_STATE_NODE)} [label="from any open state", shape=note, style="filled", '
            'fillcolor="#f2f2f2", color="#777777", fontcolor="#333333", class="any-state"];'
        )
    for edge in diagram.edges:
        attributes = [f"label={_dot_label(list(edge.events))}"]
        if edge.source == ANY_STATE_NODE:
            attributes.append('style="dashed"')
        if edge.width is not None:
            attributes.append(f"penwidth={edge.width:.1f}")
        if edge.taken:
            attributes.append(f'color="{PATH_COLOUR}", fontcolor="{PATH_COLOUR}", penwidth=2.4, class="taken"')
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)} [{', '.join(attributes)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
