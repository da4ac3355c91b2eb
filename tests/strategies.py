"""Hypothesis strategies: small valid status models and event streams with duplicates.

The models are small (a handful of states, a few event types) so that random event streams hit
every rule of "What happens to an event" often: starts, parking, retries, stale events, terminal
states, ``when`` conditions (JMESPath truthiness: 0 is true, "" and [] are false) and ``set``.
"""

from __future__ import annotations

from hypothesis import strategies as st

EVENT_TYPES = ("a", "b", "c", "d")
UNKNOWN_EVENT_TYPE = "zz"
WHEN_EXPRESSIONS = (
    "data.ok",
    "!data.ok",
    "data.n",
    "data.n == `1`",
    "data.n > `0`",
    "data.tags",
    "data.label",
    "contains(data.tags || `[]`, 'x')",
    "contains(data.tags, 'x')",  # fails when there are no tags: counts as null
    "length(data.label) > `0`",
    "source == 'shop'",
)
SET_EXPRESSIONS = (
    "data.n",
    "data.label",
    "data.tags",
    "event_id",
    "data.missing",
    "occurred_at",
    "data",
    "length(data.tags)",  # fails when there are no tags: null
)
KIND_CHOICES = ("step", "step", "step", "exception", "success", "failure")
TERMINAL = ("success", "failure")


@st.composite
def transition_entries(draw, keys: list[str], non_terminal: list[str]) -> dict:
    entry: dict = {"event": draw(st.sampled_from(EVENT_TYPES))}
    if draw(st.integers(0, 7)) == 0:
        entry["from"] = "*"
    else:
        entry["from"] = draw(st.lists(st.sampled_from(non_terminal), min_size=1, max_size=3, unique=True))
    entry["to"] = draw(st.sampled_from(keys))
    if draw(st.integers(0, 2)) == 0:
        entry["when"] = draw(st.sampled_from(WHEN_EXPRESSIONS))
    if draw(st.integers(0, 3)) == 0:
        fields = draw(st.lists(st.sampled_from(("x", "y")), min_size=1, max_size=2, unique=True))
        entry["set"] = {name: draw(st.sampled_from(SET_EXPRESSIONS)) for name in fields}
    return entry


def _reachable(initial: str, transitions: list[dict], non_terminal: list[str]) -> set[str]:
    seen, frontier = {initial}, [initial]
    while frontier:
        state = frontier.pop()
        for entry in transitions:
            sources = non_terminal if entry["from"] == "*" else entry["from"]
            if state in sources and entry["to"] not in seen:
                seen.add(entry["to"])
                frontier.append(entry["to"])
    return seen


@st.composite
def status_model_documents(draw, model_id: str = "random-model") -> dict:
    """A valid status model document (raw form: defaults are left for validation to fill)."""
    count = draw(st.integers(2, 6))
    keys = [f"s{i}" for i in range(count)]
    kinds = ["step"] + [draw(st.sampled_from(KIND_CHOICES)) for _ in keys[1:]]
    non_terminal = [key for key, kind in zip(keys, kinds, strict=True) if kind not in TERMINAL]
    transitions = draw(st.lists(transition_entries(keys, non_terminal), min_size=1, max_size=9))
    # Drop what cannot be reached from the initial state, so that the document is valid.
    reachable = _reachable("s0", transitions, non_terminal)
    kept_transitions = []
    for entry in transitions:
        if entry["from"] != "*":
            entry["from"] = [source for source in entry["from"] if source in reachable]
            if not entry["from"]:
                continue
        kept_transitions.append(entry)
    states = [
        {"key": key, "label": key.upper(), **({"kind": kind} if kind != "step" or draw(st.booleans()) else {})}
        for key, kind in zip(keys, kinds, strict=True)
        if key in reachable
    ]
    document = {
        "id": model_id,
        "name": f"Model {model_id}",
        "initial_state": "s0",
        "states": states,
        "transitions": kept_transitions,
    }
    start_events = draw(st.lists(st.sampled_from(EVENT_TYPES), max_size=2, unique=True))
    if start_events or draw(st.booleans()):
        document["start_events"] = start_events
    return document


event_data = st.fixed_dictionaries(
    {},
    optional={
        "ok": st.booleans(),
        "n": st.integers(0, 2),
        "tags": st.sampled_from([[], ["x"], ["y", "x"]]),
        "label": st.sampled_from(["", "blue"]),
    },
)


@st.composite
def event_streams(draw, *, model_id: str, prefix: str, max_events: int = 14) -> list[dict]:
    """Native-form envelopes in arrival order, complete (every optional field given).

    About one in six is a second delivery of an earlier event id, sometimes with other content
    (the first delivery wins).
    """
    transaction_ids = [f"{prefix}T{i}" for i in range(draw(st.integers(1, 3)))]
    envelopes: list[dict] = []
    for index in range(draw(st.integers(1, max_events))):
        if envelopes and draw(st.integers(0, 5)) == 0:
            earlier = draw(st.sampled_from(envelopes))
            if draw(st.booleans()):
                envelopes.append(dict(earlier))
            else:
                envelopes.append(
                    {**earlier, "event_type": draw(st.sampled_from(EVENT_TYPES)), "data": draw(event_data)}
                )
            continue
        envelopes.append(
            {
                "event_id": f"{prefix}e{index}",
                "model_id": model_id,
                "transaction_id": draw(st.sampled_from(transaction_ids)),
                "event_type": draw(st.sampled_from((*EVENT_TYPES, *EVENT_TYPES, UNKNOWN_EVENT_TYPE))),
                "occurred_at": f"2026-11-26T10:{index:02d}:00Z",
                "source": draw(st.sampled_from(["shop", "billing"])),
                "data": draw(event_data),
            }
        )
    return envelopes


def as_cloudevent(envelope: dict) -> dict:
    """The same event in the CloudEvents form (docs/spec/events.md)."""
    return {
        "specversion": "1.0",
        "id": envelope["event_id"],
        "type": envelope["event_type"],
        "source": envelope["source"],
        "subject": envelope["transaction_id"],
        "modelid": envelope["model_id"],
        "time": envelope["occurred_at"],
        "datacontenttype": "application/json",
        "data": envelope["data"],
    }


@st.composite
def batch_splits(draw, items: list) -> list[list]:
    """The items cut into consecutive batches at random points (order kept)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(items) - 1)), max_size=max(0, len(items) - 1))))
    batches, start = [], 0
    for cut in [*cuts, len(items)]:
        if cut > start:
            batches.append(items[start:cut])
            start = cut
    return batches
