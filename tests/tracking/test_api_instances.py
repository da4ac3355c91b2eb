"""GET /api/v1/instances/{model_id}/{transaction_id} and GET /api/v1/instances after applying events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from models_registry.services import model_import
from tracking.apply.applier import instances_apply_pending
from tracking.models import ProcessInstance

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def iso(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


class Orders:
    """Posts events of the example model through the API and applies them as a worker would."""

    def __init__(self, producer):
        self.producer = producer
        self.count = 0

    def send(
        self, transaction_id: str, event_type: str, minutes: int, data: dict | None = None, model="order-fulfilment"
    ):
        self.count += 1
        event = {
            "event_id": f"{transaction_id}-{self.count}",
            "model_id": model,
            "transaction_id": transaction_id,
            "event_type": event_type,
            "occurred_at": iso(minutes),
            "data": data or {},
        }
        response = self.producer.post("/api/v1/events", event, format="json")
        assert response.status_code == 202, response.content
        instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))
        return event["event_id"]


@pytest.fixture
def orders(example_model, api_client):
    return Orders(api_client(produce=True))


@pytest.fixture
def reader(api_client):
    return api_client(read=True)


def milestone_view(answer: dict) -> list[tuple[str, str, str | None]]:
    return [(m["key"], m["status"], m["reached_at"]) for m in answer["milestones"]]


def test_instance_detail_after_events(orders, reader):
    placed = orders.send("ORD-1", "order.placed", 0)
    paid = orders.send("ORD-1", "payment.captured", 5)
    packed = orders.send("ORD-1", "warehouse.packed", 60)
    shipped = orders.send("ORD-1", "carrier.picked_up", 120, {"carrier": "DHL", "tracking_number": "JD0001"})

    response = reader.get("/api/v1/instances/order-fulfilment/ORD-1")

    assert response.status_code == 200
    answer = response.json()
    assert answer["model_id"] == "order-fulfilment"
    assert answer["transaction_id"] == "ORD-1"
    assert answer["version"] == 1
    assert (answer["state"], answer["state_label"], answer["state_kind"]) == ("shipped", "On its way", "step")
    assert answer["status"] == "active"
    assert answer["context"] == {"carrier": "DHL", "tracking_number": "JD0001"}
    assert answer["parked_events"] == 0
    # The example model has no milestone groups: every step state is a milestone.
    assert milestone_view(answer) == [
        ("received", "reached", iso(0)),
        ("paid", "reached", iso(5)),
        ("packed", "reached", iso(60)),
        ("shipped", "current", iso(120)),
    ]
    assert answer["milestones"][0]["label"] == "Order received"
    assert answer["milestones"][0]["description"] == "We have your order and are checking it."
    assert [(h["from_state"], h["to_state"], h["event_id"], h["occurred_at"]) for h in answer["history"]] == [
        ("", "received", placed, iso(0)),
        ("received", "paid", paid, iso(5)),
        ("paid", "packed", packed, iso(60)),
        ("packed", "shipped", shipped, iso(120)),
    ]
    assert answer["history"][3]["event_type"] == "carrier.picked_up"
    assert answer["history"][3]["to_label"] == "On its way"
    instance = ProcessInstance.objects.get(transaction_id="ORD-1")
    assert datetime.fromisoformat(answer["updated_at"]) == instance.updated_at


def test_parked_events_are_counted(orders, reader):
    orders.send("ORD-2", "order.placed", 0)
    orders.send("ORD-2", "warehouse.packed", 10)  # before payment: waits
    orders.send("ORD-2", "carrier.picked_up", 20)  # waits too

    answer = reader.get("/api/v1/instances/order-fulfilment/ORD-2").json()

    assert answer["state"] == "received"
    assert answer["parked_events"] == 2
    assert milestone_view(answer)[:2] == [("received", "current", iso(0)), ("paid", "upcoming", None)]

    orders.send("ORD-2", "payment.captured", 30)
    answer = reader.get("/api/v1/instances/order-fulfilment/ORD-2").json()

    assert answer["state"] == "shipped"
    assert answer["parked_events"] == 0
    # Milestone times are when the source saw the events, not when they were applied.
    assert milestone_view(answer) == [
        ("received", "reached", iso(0)),
        ("paid", "reached", iso(30)),
        ("packed", "reached", iso(10)),
        ("shipped", "current", iso(20)),
    ]


def test_exception_success_and_failure_outcomes(orders, reader):
    orders.send("ORD-H", "order.placed", 0)
    orders.send("ORD-H", "payment.failed", 1)
    orders.send("ORD-D", "order.placed", 0)
    for minutes, event_type in enumerate(["payment.captured", "warehouse.packed", "carrier.picked_up"], start=1):
        orders.send("ORD-D", event_type, minutes)
    orders.send("ORD-D", "carrier.delivered", 9)
    orders.send("ORD-C", "order.placed", 0)
    orders.send("ORD-C", "payment.captured", 1)
    orders.send("ORD-C", "order.cancelled", 2, {"reason": "changed mind"})

    on_hold = reader.get("/api/v1/instances/order-fulfilment/ORD-H").json()
    delivered = reader.get("/api/v1/instances/order-fulfilment/ORD-D").json()
    cancelled = reader.get("/api/v1/instances/order-fulfilment/ORD-C").json()

    assert (on_hold["state"], on_hold["state_kind"], on_hold["status"]) == ("on_hold", "exception", "in_exception")
    assert on_hold["state_label"] == "On hold"
    assert [m["status"] for m in on_hold["milestones"]] == ["current", "upcoming", "upcoming", "upcoming"]
    assert (delivered["state"], delivered["status"]) == ("delivered", "succeeded")
    assert [m["status"] for m in delivered["milestones"]] == ["reached"] * 4
    assert (cancelled["state"], cancelled["status"]) == ("cancelled", "failed")
    assert [m["status"] for m in cancelled["milestones"]] == ["reached", "reached", "upcoming", "upcoming"]


def test_milestone_groups_of_the_model_are_used(api_client, reader):
    model_import(
        document={
            "id": "claim",
            "name": "Insurance claim",
            "initial_state": "filed",
            "states": [
                {"key": "filed", "label": "Filed"},
                {"key": "triage", "label": "Triage"},
                {"key": "assessment", "label": "Assessment"},
                {"key": "approved", "label": "Approved"},
                {"key": "paid", "label": "Paid", "kind": "success"},
            ],
            "transitions": [
                {"event": "claim.triaged", "from": ["filed"], "to": "triage"},
                {"event": "claim.assessed", "from": ["triage"], "to": "assessment"},
                {"event": "claim.approved", "from": ["assessment"], "to": "approved"},
                {"event": "claim.paid", "from": ["approved"], "to": "paid"},
            ],
            "milestones": [
                {"key": "submitted", "label": "Submitted", "states": ["filed"]},
                {
                    "key": "in_review",
                    "label": "In review",
                    "description": "We look at it.",
                    "states": ["triage", "assessment"],
                },
                {"key": "decided", "label": "Decided", "states": ["approved", "paid"]},
            ],
        }
    )
    claims = Orders(api_client(produce=True))
    claims.send("CLM/7", "claim.filed", 0, model="claim")
    claims.send("CLM/7", "claim.triaged", 10, model="claim")
    claims.send("CLM/7", "claim.assessed", 20, model="claim")

    # The transaction id holds a slash: it is part of the path.
    answer = reader.get("/api/v1/instances/claim/CLM/7").json()

    assert answer["state"] == "assessment"
    assert milestone_view(answer) == [
        ("submitted", "reached", iso(0)),
        ("in_review", "current", iso(10)),
        ("decided", "upcoming", None),
    ]
    assert answer["milestones"][1]["states"] == ["triage", "assessment"]
    assert answer["milestones"][1]["description"] == "We look at it."


def test_waiting_and_unknown_instances_are_404(orders, reader):
    orders.send("ORD-W", "payment.captured", 0)  # cannot start an instance: parked, instance waiting
    assert ProcessInstance.objects.filter(transaction_id="ORD-W").exists()

    waiting = reader.get("/api/v1/instances/order-fulfilment/ORD-W")
    unknown = reader.get("/api/v1/instances/order-fulfilment/ORD-NONE")
    wrong_model = reader.get("/api/v1/instances/no-such-model/ORD-W")

    assert waiting.status_code == unknown.status_code == wrong_model.status_code == 404
    assert "ORD-W" in waiting.json()["detail"]
    assert reader.get("/api/v1/instances").json()["count"] == 0


def test_instance_list_filters_and_pages(orders, reader):
    orders.send("ORD-1", "order.placed", 0)
    orders.send("ORD-2", "order.placed", 0)
    orders.send("ORD-2", "payment.captured", 1)
    orders.send("ORD-3", "order.placed", 0)
    orders.send("ORD-3", "payment.failed", 1)
    orders.send("ORD-4", "payment.captured", 0)  # waiting: never listed
    now = timezone.now()
    for offset, txn in enumerate(["ORD-3", "ORD-1", "ORD-2"]):
        ProcessInstance.objects.filter(transaction_id=txn).update(updated_at=now - timedelta(hours=3 - offset))

    def listed(query: str = "") -> list[str]:
        response = reader.get(f"/api/v1/instances{query}")
        assert response.status_code == 200, response.content
        return [row["transaction_id"] for row in response.json()["results"]]

    assert listed() == ["ORD-3", "ORD-1", "ORD-2"], "oldest change first"
    assert listed("?state=paid") == ["ORD-2"]
    assert listed("?status=in_exception") == ["ORD-3"]
    assert listed("?status=active") == ["ORD-1", "ORD-2"]
    assert listed("?model_id=order-fulfilment&state=received") == ["ORD-1"]
    assert listed("?model_id=other") == []
    since = (now - timedelta(hours=2, minutes=30)).isoformat().replace("+00:00", "Z")
    assert listed(f"?updated_since={since}") == ["ORD-1", "ORD-2"]

    page = reader.get("/api/v1/instances?limit=2").json()
    assert page["count"] == 3
    assert [row["transaction_id"] for row in page["results"]] == ["ORD-3", "ORD-1"]
    assert page["next"].endswith("limit=2&offset=2")
    assert listed("?limit=2&offset=2") == ["ORD-2"]

    row = reader.get("/api/v1/instances?state=paid").json()["results"][0]
    assert row == {
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-2",
        "version": 1,
        "state": "paid",
        "state_label": "Payment confirmed",
        "status": "active",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [("?status=waiting", "status"), ("?status=nonsense", "status"), ("?updated_since=yesterday", "updated_since")],
)
def test_instance_list_rejects_bad_filters(example_model, reader, query, field):
    response = reader.get(f"/api/v1/instances{query}")

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input."
    assert list(response.json()["errors"]) == [field]


def test_instance_detail_reads_a_fixed_number_of_queries(orders, reader, django_assert_max_num_queries):
    orders.send("ORD-Q", "order.placed", 0)
    for minutes in range(1, 30):
        orders.send("ORD-Q", "payment.failed" if minutes % 2 else "payment.captured", minutes)

    # Authentication (token, user) and touching last_used_at, then instance, history, parked count.
    with django_assert_max_num_queries(6):
        response = reader.get("/api/v1/instances/order-fulfilment/ORD-Q")

    assert response.status_code == 200
    assert len(json.loads(response.content)["history"]) == 3
