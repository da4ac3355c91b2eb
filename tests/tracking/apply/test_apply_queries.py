"""The apply's statements do not grow with the instances it decides: no query per row."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.events import ingest, order_event
from tests.tracking.notify.test_outbox import subscribe
from tracking.apply.applier import instances_apply_pending
from tracking.models import EventStatus, InboxEvent, ProcessInstance
from tracking.notify.models import Notification

pytestmark = pytest.mark.django_db


def apply_orders(prefix: str, count: int) -> Counter:
    """Place and pay ``count`` orders and apply them in one run: how often each statement ran."""
    ingest(
        *[order_event(f"{prefix}{n}a", f"{prefix}{n}", "order.placed") for n in range(count)],
        *[order_event(f"{prefix}{n}b", f"{prefix}{n}", "payment.captured", amount=n) for n in range(count)],
    )
    ids = list(ProcessInstance.objects.filter(transaction_id__startswith=prefix).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        report = instances_apply_pending(instance_ids=ids)
    assert report.decided == 2 * count
    # A statement by its beginning: the number of ids in an IN list, or of rows in an executemany
    # ("120 times: UPDATE …"), does not make it another one. Savepoint names differ from run to run.
    return Counter(
        re.sub(r"^\d+ times: ", "", q["sql"])[:60] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]
    )


def test_applying_twenty_times_the_instances_takes_the_same_statements(example_model):
    subscribe()
    apply_orders("warm-", 1)  # a version's definition is read once per process

    few, many = apply_orders("few-", 3), apply_orders("many-", 60)

    # The same statements, as often. Only the bulk inserts may run more than once on SQLite, where a
    # statement may have only so many parameters; on PostgreSQL they too are one statement each.
    assert {sql: n for sql, n in many.items() if not sql.startswith("INSERT")} == {
        sql: n for sql, n in few.items() if not sql.startswith("INSERT")
    }
    assert set(many) == set(few)
    if connection.vendor == "postgresql":
        assert many == few
    assert InboxEvent.objects.filter(status=EventStatus.APPLIED).count() == 2 * 64
    assert Notification.objects.count() > 2 * 64
    states = set(ProcessInstance.objects.values_list("state", flat=True))
    assert states == {"paid"}
