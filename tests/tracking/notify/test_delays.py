"""The delay check on a frozen clock: an instance past its state's expected_within is told of once per
stay, as a ``delayed`` notification and an operators' alert, with an indexed query."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_registry.services import model_import
from tests.events import ingest, order_event
from tests.tracking.notify.test_outbox import apply_all, subscribe
from tracking.models import DelayNotice, Notification, ProcessInstance
from tracking.notify.delays import delays_notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders_expected_paid_within_a_day(example_model):
    document = copy.deepcopy(example_model.document)
    document["states"][0]["expected_within"] = "P1D"  # received
    model_import(document=document)


def test_a_delayed_instance_is_told_of_once_per_stay(orders_expected_paid_within_a_day, settings):
    settings.STATUSTRACKER_DELAY_ALERT_EMAILS = ["ops@example.com"]
    subscribe(kinds=["delayed"], context_fields=["carrier"])
    ingest(order_event("A1", "A", "order.placed"), order_event("B1", "B", "order.placed"))
    apply_all()
    entered = ProcessInstance.objects.get(transaction_id="A").state_entered_at
    ProcessInstance.objects.filter(transaction_id="B").update(state_entered_at=entered + timedelta(hours=12))

    assert delays_notify(now=entered + timedelta(hours=23)) == 0  # on time (frozen clock)
    assert delays_notify(now=entered + timedelta(hours=25)) == 1  # A is late, B not yet
    assert delays_notify(now=entered + timedelta(hours=26)) == 0  # told once
    assert delays_notify(now=entered + timedelta(hours=40)) == 1  # B now

    notifications = Notification.objects.order_by("id")
    assert [(n.kind, n.payload["data"]["transaction_id"]) for n in notifications] == [
        ("delayed", "A"), ("delayed", "B"),
    ]  # fmt: skip
    assert notifications[0].payload["data"]["to_state"] == "received"
    assert notifications[0].payload["data"]["milestone"] == {"key": "received", "label": "Order received"}
    assert [m.to for m in mail.outbox] == [["ops@example.com"], ["ops@example.com"]]
    assert "order-fulfilment · A: in received" in mail.outbox[0].body


def test_a_new_stay_in_the_state_can_be_late_again(orders_expected_paid_within_a_day):
    ingest(order_event("A1", "A", "order.placed"))
    apply_all()
    instance = ProcessInstance.objects.get()
    entered = instance.state_entered_at
    assert delays_notify(now=entered + timedelta(days=2)) == 1

    ProcessInstance.objects.filter(pk=instance.pk).update(state_entered_at=entered + timedelta(days=3))

    assert delays_notify(now=entered + timedelta(days=5)) == 1
    assert DelayNotice.objects.count() == 2


def test_finished_instances_and_states_without_expectation_are_not_delayed(orders_expected_paid_within_a_day):
    ingest(order_event("A1", "A", "order.placed"), order_event("A2", "A", "payment.captured"))
    apply_all()
    entered = ProcessInstance.objects.get().state_entered_at

    assert delays_notify(now=entered + timedelta(days=30)) == 0  # paid has no expected_within


@pytest.mark.postgres
def test_the_check_uses_the_index_not_a_table_scan(orders_expected_paid_within_a_day, postgres_only):
    ingest(order_event("A1", "A", "order.placed"))
    apply_all()
    with CaptureQueriesContext(connection) as queries:
        delays_notify()
    lookup = next(q["sql"] for q in queries.captured_queries if '"state_entered_at" <' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index CAN answer
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "instance_open_since" in plan
