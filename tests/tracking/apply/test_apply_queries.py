"""The apply's statements do not grow with the instances it decides: no query per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.events import ingest, order_event
from tests.tracking.notify.test_outbox import subscribe
from tracking.apply.applier import instances_apply_pending
from tracking.models import EventStatus, InboxEvent, ProcessInstance
from tracking.notify.models import Notification

pytestmark = pytest.mark.django_db


def apply_orders(prefix: str, count: int) -> int:
    """Place and pay ``count`` orders, apply them in one run; the number of statements it took."""
    ingest(
        *[order_event(f"{prefix}{n}a", f"{prefix}{n}", "order.placed") for n in range(count)],
        *[order_event(f"{prefix}{n}b", f"{prefix}{n}", "payment.captured", amount=n) for n in range(count)],
    )
    ids = list(ProcessInstance.objects.filter(transaction_id__startswith=prefix).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        report = instances_apply_pending(instance_ids=ids)
    assert report.decided == 2 * count
    return len(queries)


def test_applying_ten_times_the_instances_takes_the_same_statements(example_model):
    subscribe()
    apply_orders("warm-", 1)  # a version's definition is read once per process

    few, many = apply_orders("few-", 3), apply_orders("many-", 30)

    assert few == many
    assert InboxEvent.objects.filter(status=EventStatus.APPLIED).count() == 2 * 34
    assert Notification.objects.count() > 2 * 34
    states = set(ProcessInstance.objects.values_list("state", flat=True))
    assert states == {"paid"}
