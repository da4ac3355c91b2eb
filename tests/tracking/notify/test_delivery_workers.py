"""Notifications through the real pipeline: real Celery workers deliver to a real endpoint on
127.0.0.1, in order per transaction, at least once even when a worker is SIGKILLed mid-delivery."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from models_registry.models import StatusModel
from tests.conftest import EXAMPLES, wait_for
from tests.events import ingest, order_event
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeliveryStatus, Notification, TransitionRecord, WebhookSubscription
from tracking.notify.tasks import sweep_notifications

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER_ENV = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}


def subscribe(url: str, **filters) -> WebhookSubscription:
    model = StatusModel.objects.get(key="order-fulfilment")
    return WebhookSubscription.objects.create(model=model, url=url, **filters)


def test_the_example_streams_deliveries_arrive_in_order_and_verify(example_model, receiver, start_worker):
    subscription = subscribe(receiver.url, kinds=["transition"], context_fields=["carrier"])
    lines = (EXAMPLES / "order-fulfilment-events.jsonl").read_bytes().splitlines()
    events_ingest(items=[RawEvent(line) for line in lines if line.strip()], source_kind="file")

    start_worker(extra_env=WORKER_ENV)

    wait_for(
        lambda: (
            len(receiver.delivered()) == TransitionRecord.objects.count() > 0
            and not Notification.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
        ),
        timeout=60,
        message="every transition delivered",
    )
    webhook = Webhook(subscription.secret)
    by_transaction = defaultdict(list)
    for received in receiver.delivered():
        data = webhook.verify(received.body, received.headers)["data"]
        by_transaction[data["transaction_id"]].append(data["to_state"])
    expected = defaultdict(list)
    for transaction_id, to_state in TransitionRecord.objects.order_by("id").values_list(
        "instance__transaction_id", "to_state"
    ):
        expected[transaction_id].append(to_state)
    assert by_transaction == expected


def test_a_worker_killed_mid_delivery_leaves_it_to_be_delivered_again_with_the_same_id(
    example_model, receiver, start_worker
):
    subscribe(receiver.url, kinds=["outcome"])
    receiver.hold = threading.Event()  # the endpoint takes the request and does not answer yet
    ingest(
        order_event("K1", "K", "order.placed"),
        order_event("K2", "K", "order.cancelled", reason="changed my mind"),
    )
    worker = start_worker(extra_env=WORKER_ENV)
    wait_for(receiver.arrived.is_set, timeout=60, message="the delivery reached the endpoint")

    worker.kill()  # mid-delivery: the endpoint has the request, the row was never marked delivered
    receiver.hold.set()
    notification = Notification.objects.get()
    assert notification.status == DeliveryStatus.PENDING

    # The sweep (beat's task) finds it once its grace period has passed; a new worker sends it
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    receiver.hold = None
    start_worker(extra_env=WORKER_ENV)
    assert sweep_notifications() == 1
    wait_for(
        lambda: Notification.objects.get().status == DeliveryStatus.DELIVERED, timeout=60, message="delivered again"
    )
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) >= 2
    assert set(ids) == {notification.webhook_id}
