"""The diagram's graph (models_registry.diagram): pure, from a document or a compiled definition."""

from __future__ import annotations

import re

import pytest

from models_registry.definition import Definition
from models_registry.diagram import ANY_STATE_NODE, model_diagram
from models_registry.services import parse_documents
from tests.conftest import EXAMPLES


def example() -> dict:
    return parse_documents((EXAMPLES / "order-fulfilment.yaml").read_text(), filename="order-fulfilment.yaml")[0]


def by_key(diagram) -> dict:
    return {state.key: state for state in diagram.states}


def edges(diagram) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(edge.source, edge.target): edge.events for edge in diagram.edges}


def generated_model(size: int = 30) -> dict:
    """A chain of ``size - 3`` steps with a skip every third step, a detour, and two outcomes."""
    steps = [f"step_{i:02d}" for i in range(size - 3)]
    states = [{"key": key, "label": f"Step {i}", "kind": "step"} for i, key in enumerate(steps)]
    states += [
        {"key": "on_hold", "label": "On hold", "kind": "exception"},
        {"key": "done", "label": "Done", "kind": "success"},
        {"key": "cancelled", "label": "Cancelled", "kind": "failure"},
    ]
    transitions = [
        {"event": f"advance.{i}", "from": [a], "to": b} for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False))
    ]
    transitions += [{"event": "skip", "from": [a], "to": b} for a, b in zip(steps[::3], steps[2::3], strict=False)]
    transitions += [
        {"event": "finished", "from": [steps[-1]], "to": "done"},
        {"event": "hold", "from": "*", "to": "on_hold"},
        {"event": "resume", "from": ["on_hold"], "to": steps[0]},
        {"event": "cancel", "from": "*", "to": "cancelled", "when": "data.reason != null"},
    ]
    return {"id": "big", "name": "Big", "initial_state": steps[0], "states": states, "transitions": transitions}


def test_states_carry_label_kind_and_the_initial_mark():
    diagram = model_diagram(example())

    states = by_key(diagram)
    assert list(states) == ["received", "paid", "packed", "shipped", "delivered", "on_hold", "cancelled"]
    assert states["received"].label == "Order received"
    assert {key: s.kind for key, s in states.items() if s.kind != "step"} == {
        "delivered": "success",
        "on_hold": "exception",
        "cancelled": "failure",
    }
    assert [key for key, s in states.items() if s.initial] == ["received"]
    assert diagram.unreachable == ()
    assert diagram.counts_shown is False
    assert all(s.count is None for s in diagram.states)
    assert [entry["kind"] for entry in diagram.legend] == ["step", "success", "failure", "exception"]


def test_a_compiled_definition_gives_the_same_diagram():
    assert model_diagram(Definition.from_document(example())) == model_diagram(example())


def test_edges_are_labelled_by_event_and_when_one_per_source():
    found = edges(model_diagram(example()))

    assert found[("received", "paid")] == ("payment.captured",)
    assert found[("on_hold", "paid")] == ("payment.captured",)
    assert found[("shipped", "delivered")] == ("carrier.delivered",)
    for source in ("received", "paid", "on_hold"):
        assert found[(source, "cancelled")] == ("order.cancelled\nwhen data.reason != null",)
    assert len(found) == 9


def test_transitions_between_the_same_two_states_share_one_edge():
    document = example()
    document["transitions"].append({"event": "payment.retried", "from": ["received"], "to": "paid"})

    assert edges(model_diagram(document))[("received", "paid")] == ("payment.captured", "payment.retried")


def test_a_long_when_is_cut_short_on_the_edge():
    document = example()
    document["transitions"][0]["when"] = "data.amount > `100` && " * 10

    (label,) = edges(model_diagram(document))[("received", "paid")]
    event, when = label.split("\n")
    assert event == "payment.captured"
    assert when.startswith("when data.amount > `100` && ")
    assert when.endswith("...")
    assert len(when) <= len("when ") + 48


def test_from_any_state_is_one_node_and_counts_for_reachability():
    document = example()
    document["states"].append({"key": "lost", "label": "Lost in transit", "kind": "failure"})
    # Nothing leads to "lost" yet: unreachable, and flagged (a draft may be drawn before it is valid).
    diagram = model_diagram(document)
    assert diagram.unreachable == ("lost",)
    assert "unreachable" in diagram.to_dot()

    document["transitions"].append({"event": "carrier.lost", "from": "*", "to": "lost"})
    diagram = model_diagram(document)

    assert diagram.unreachable == ()
    assert edges(diagram)[(ANY_STATE_NODE, "lost")] == ("carrier.lost",)
    assert diagram.has_any_state_edges
    assert '"*" -> "lost"' in diagram.to_dot()
    assert "from any open state" in diagram.to_dot()


def test_a_state_reached_only_from_an_unreachable_one_is_unreachable_too():
    document = example()
    document["states"] += [
        {"key": "orphan", "label": "Orphan", "kind": "step"},
        {"key": "after_orphan", "label": "After", "kind": "success"},
    ]
    document["transitions"].append({"event": "x", "from": ["orphan"], "to": "after_orphan"})

    assert model_diagram(document).unreachable == ("orphan", "after_orphan")


def test_counts_show_on_every_state_zero_where_none():
    diagram = model_diagram(example(), counts={"paid": 3, "shipped": 1})

    assert diagram.counts_shown
    assert {s.key: s.count for s in diagram.states} == {
        "received": 0,
        "paid": 3,
        "packed": 0,
        "shipped": 1,
        "delivered": 0,
        "on_hold": 0,
        "cancelled": 0,
    }
    dot = diagram.to_dot()
    assert "Payment confirmed\\n(paid)\\n3 instances" in dot
    assert "On its way\\n(shipped)\\n1 instance" in dot


def test_a_draft_with_unknown_keys_is_drawn_without_them():
    document = {
        "initial_state": "nowhere",
        "states": [{"key": "a", "label": "A"}, {"key": "a", "label": "Again"}, {"label": "no key"}, "junk"],
        "transitions": [{"event": "e", "from": ["a", "ghost"], "to": "a"}, {"event": "f", "from": ["a"], "to": "x"}],
    }

    diagram = model_diagram(document)

    assert [(s.key, s.label, s.kind, s.initial, s.unreachable) for s in diagram.states] == [
        ("a", "A", "step", False, True)
    ]
    assert edges(diagram) == {("a", "a"): ("e",)}


def test_labels_are_escaped_in_dot():
    document = example()
    document["states"][0]["label"] = 'Say "hi" \\ bye'

    assert '"received" [label="Say \\"hi\\" \\\\ bye\\n(received)"' in model_diagram(document).to_dot()


def test_every_state_is_one_node_of_the_dot_with_its_classes():
    dot = model_diagram(example()).to_dot()

    nodes = dict(re.findall(r'^  "([a-z_]+)" \[.*class="([^"]*)"\];$', dot, flags=re.M))
    assert nodes == {
        "received": "state kind-step initial",
        "paid": "state kind-step",
        "packed": "state kind-step",
        "shipped": "state kind-step",
        "delivered": "state kind-success",
        "on_hold": "state kind-exception",
        "cancelled": "state kind-failure",
    }
    assert '"start:" -> "received"' in dot


@pytest.mark.parametrize("size", [30, 60])
def test_a_generated_large_model_stays_compact(size):
    diagram = model_diagram(generated_model(size))

    assert len(diagram.states) == size
    assert diagram.unreachable == ()
    # "*" is drawn once per transition, not once per open state: the edges grow with the transitions.
    any_edges = [edge for edge in diagram.edges if edge.source == ANY_STATE_NODE]
    assert [(edge.target, edge.events) for edge in any_edges] == [
        ("on_hold", ("hold",)),
        ("cancelled", ("cancel\nwhen data.reason != null",)),
    ]
    transitions = len(generated_model(size)["transitions"])
    assert len(diagram.edges) == transitions
    assert diagram.to_dot().count(" -> ") == transitions + 1  # and the start arrow
