"""The outbox: a notification row for every subscribed change, written by the apply in its own
transaction (none for a change that did not commit), with the subscription's filters and fields."""

from __future__ import annotations

import pytest
from django.db import transaction

from models_registry.models import StatusModel
from tests.events import ingest, order_event
from tracking.apply.applier import instances_apply_pending
from tracking.models import Notification, ProcessInstance, WebhookSubscription

pytestmark = pytest.mark.django_db


def subscribe(url="http://127.0.0.1:9/hooks", **filters) -> WebhookSubscription:
    return WebhookSubscription.objects.create(model=StatusModel.objects.get(key="order-fulfilment"), url=url, **filters)


def apply_all() -> None:
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def ship_order(transaction_id="A") -> None:
    ingest(
        order_event(f"{transaction_id}1", transaction_id, "order.placed"),
        order_event(f"{transaction_id}2", transaction_id, "payment.captured"),
        order_event(f"{transaction_id}3", transaction_id, "warehouse.packed"),
        order_event(f"{transaction_id}4", transaction_id, "carrier.picked_up", carrier="DHL", tracking_number="JD1"),
        order_event(f"{transaction_id}5", transaction_id, "carrier.delivered"),
    )
    apply_all()


def kinds_and_targets() -> list[tuple[str, str]]:
    return [(n.kind, n.payload["data"]["to_state"]) for n in Notification.objects.order_by("id")]


def test_every_transition_of_a_subscribed_model_is_one_row(example_model):
    subscription = subscribe(kinds=["transition"], context_fields=["carrier"])

    ship_order()

    assert kinds_and_targets() == [
        ("transition", "received"), ("transition", "paid"), ("transition", "packed"),
        ("transition", "shipped"), ("transition", "delivered"),
    ]  # fmt: skip
    shipped = Notification.objects.order_by("id")[3]
    assert shipped.subscription == subscription
    assert shipped.context == {"carrier": "DHL"}  # kept with the row: the context as it was then
    assert shipped.payload["type"] == "instance.transition"
    assert shipped.payload["data"] == {
        "model_id": "order-fulfilment",
        "transaction_id": "A",
        "kind": "transition",
        "from_state": "packed",
        "to_state": "shipped",
        "milestone": {"key": "shipped", "label": "On its way"},
        "outcome": None,
        "event_id": "A4",
        "occurred_at": "2026-11-26T10:00:00Z",
        "context": {"carrier": "DHL"},  # only the fields the subscription chose, as they were then
    }
    assert len({n.webhook_id for n in Notification.objects.all()}) == 5


def test_milestones_outcomes_and_exceptions_are_kinds_of_their_own(example_model):
    subscribe(kinds=["milestone", "outcome", "exception_entered", "exception_left"])
    ingest(order_event("B1", "B", "order.placed"), order_event("B2", "B", "payment.failed"))
    apply_all()
    ingest(order_event("B3", "B", "payment.captured"), order_event("B4", "B", "order.cancelled", reason="x"))
    apply_all()

    assert kinds_and_targets() == [
        ("milestone", "received"),
        ("exception_entered", "on_hold"),
        ("milestone", "paid"),
        ("exception_left", "paid"),
        ("outcome", "cancelled"),
    ]


def test_filters_by_state_and_milestone(example_model):
    subscribe(states=["shipped", "delivered"])
    subscribe(kinds=["transition"], milestones=["paid"])

    ship_order()

    by_subscription = {}
    for notification in Notification.objects.order_by("id"):
        by_subscription.setdefault(notification.subscription_id, []).append(notification.payload["data"]["to_state"])
    first, second = sorted(by_subscription)
    assert set(by_subscription[first]) == {"shipped", "delivered"}
    assert by_subscription[second] == ["paid"]


def test_an_inactive_subscription_or_an_unsubscribed_model_gets_nothing(example_model):
    subscribe(is_active=False)

    ship_order()

    assert not Notification.objects.exists()


def test_an_apply_that_rolls_back_leaves_no_notification(example_model):
    subscribe()
    ingest(order_event("C1", "C", "order.placed"))

    written = []

    def apply_then_fail():
        with transaction.atomic():
            apply_all()
            written.append(Notification.objects.count())  # written in the apply's transaction...
            raise RuntimeError("the transaction does not commit")

    with pytest.raises(RuntimeError):
        apply_then_fail()

    assert written == [2]  # the creation: a transition, and the first milestone reached
    assert not Notification.objects.exists()  # ... and gone with it
    assert ProcessInstance.objects.get(transaction_id="C").state == ""
