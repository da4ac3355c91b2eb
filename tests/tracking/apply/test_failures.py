"""One instance that fails never holds up another (real Celery workers, both databases).

Each kind of failure is provoked inside one apply task that covers four instances: a handler
that raises (a bug), a move the definition does not allow, and a stored row that cannot be read.
The other three instances apply at once; the failing one is tried alone with a doubling wait,
then its offending event is marked ``failed`` and the instance is held until an operator
retries or skips that event.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
import yaml
from django.db import connection

from models_registry.services import model_import
from tests.conftest import EXAMPLES, wait_for
from tests.failing_handlers import FAILING_HANDLER_DIR, fix
from tracking.apply.applier import ApplyReport, instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.inbox.sweep import pending_sweep
from tracking.models import ApplyFailure, EventStatus, InboxEvent, ProcessInstance
from tracking.operations.failed_events import events_retry_failed, events_skip_failed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())
MAX_ATTEMPTS = 3


def event(event_id: str, transaction_id: str, event_type: str, **data) -> dict:
    return {
        "event_id": event_id,
        "model_id": "fragile-orders",
        "transaction_id": transaction_id,
        "event_type": event_type,
        "occurred_at": "2026-11-26T10:00:00Z",
        "data": data,
    }


def ingest(*envelopes: dict) -> None:
    results = events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")
    assert {result.status for result in results} == {"accepted"}


def status_of(event_id: str) -> str:
    # Not the whole row: one test stores a time that cannot be read back.
    return InboxEvent.objects.values_list("status", flat=True).get(event_id=event_id)


def state_of(transaction_id: str) -> str:
    return ProcessInstance.objects.get(transaction_id=transaction_id).state


def corrupt_time(event_id: str) -> None:
    """Give a stored event a time that can be written but not read back (as before the envelope
    refused such times): before year 1 on PostgreSQL, year 0 as text on SQLite."""
    table = InboxEvent._meta.db_table
    value = "0001-12-31 23:00:00+00 BC" if connection.vendor == "postgresql" else "0000-12-31 23:00:00"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET occurred_at = %s WHERE event_id = %s", [value, event_id])


def repair_time(event_id: str) -> None:
    table = InboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET occurred_at = %s WHERE event_id = %s", ["2026-11-26 10:00:00", event_id])


FAILURES = {
    # kind: (handler, data of C's payment event, expected fragment of the error)
    "handler raises": ("explodes_until_fixed", {"explode": True}, "cannot decide c2 yet"),
    "move not allowed": ("jumps_ahead", {"jump": True}, "TransitionNotAllowed"),
    "row cannot be read": ("declarative", {}, "Error"),
}


@pytest.fixture
def fragile(tmp_path, start_worker):
    def start():
        env = {
            "STATUSTRACKER_HANDLER_MODULES": "tests.failing_handlers",
            FAILING_HANDLER_DIR: str(tmp_path),
            "STATUSTRACKER_APPLY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "STATUSTRACKER_APPLY_RETRY_SECONDS": "1",
        }
        return start_worker(concurrency=2, extra_env=env)

    return start


@pytest.mark.parametrize("kind", FAILURES, ids=FAILURES.keys())
def test_a_failing_instance_is_isolated_retried_then_its_event_marked_failed(kind, fragile, tmp_path, monkeypatch):
    handler, data, error = FAILURES[kind]
    monkeypatch.setenv(FAILING_HANDLER_DIR, str(tmp_path))
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "fragile-orders", "handler": handler})

    # Given four orders placed and paid, in one ingestion (so one apply task covers all four),
    # where order C's payment fails
    ingest(
        *[event(f"{t.lower()}1", t, "order.placed") for t in "ABCD"],
        *[event(f"{t.lower()}2", t, "payment.captured", **(data if t == "C" else {})) for t in "ABCD"],
    )
    if kind == "row cannot be read":
        corrupt_time("c2")

    # When a worker takes the task
    fragile()

    # Then the other orders are applied at once, before C's event is given up on
    wait_for(lambda: all(state_of(t) == "paid" for t in "ABD"), timeout=60, message="orders A, B and D paid")
    wait_for(lambda: status_of("c2") == EventStatus.FAILED, timeout=90, message="C's payment marked failed")
    failed = InboxEvent.objects.only("reason", "processed_at").get(event_id="c2")
    assert error in failed.reason
    assert max(InboxEvent.objects.filter(event_id__in=["a2", "b2", "d2"]).values_list("processed_at", flat=True)) < (
        failed.processed_at
    )
    # ... the events before it were applied, the instance stopped there, and its tries were counted
    assert (status_of("c1"), state_of("C")) == (EventStatus.APPLIED, "received")
    assert not ApplyFailure.objects.exists()

    # And C's later events wait (held), while other orders go on; the sweep leaves C alone
    ingest(event("c3", "C", "warehouse.packed"), event("a3", "A", "warehouse.packed"))
    wait_for(lambda: state_of("A") == "packed", timeout=60, message="order A packed")
    assert status_of("c3") == EventStatus.PENDING
    assert pending_sweep(older_than=timedelta(0)) == 0
    # ... however often it is offered: a held instance's rows are not read (c2 may be unreadable)
    held = ProcessInstance.objects.get(transaction_id="C").pk
    assert instances_apply_pending(instance_ids=[held]) == ApplyReport(decided=0, failed={})
    assert status_of("c3") == EventStatus.PENDING


def test_an_operator_retries_a_failed_event_after_the_fix(fragile, tmp_path, monkeypatch):
    # Given order C held by a payment that failed on every try
    monkeypatch.setenv(FAILING_HANDLER_DIR, str(tmp_path))
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "fragile-orders", "handler": "explodes_until_fixed"})
    ingest(event("c1", "C", "order.placed"), event("c2", "C", "payment.captured", explode=True))
    fragile()
    wait_for(lambda: status_of("c2") == EventStatus.FAILED, timeout=90, message="C's payment marked failed")
    ingest(event("c3", "C", "warehouse.packed"))

    # When the bug is fixed and the operator retries the event
    fix(tmp_path)
    assert events_retry_failed(event_pks=InboxEvent.objects.filter(event_id="c2").values_list("pk", flat=True)) == 1

    # Then it applies, and so do the events that waited behind it
    wait_for(lambda: state_of("C") == "packed", timeout=60, message="order C packed")
    assert [status_of(e) for e in ("c2", "c3")] == [EventStatus.APPLIED, EventStatus.APPLIED]


def test_an_operator_repairs_an_unreadable_row_and_retries_it(fragile):
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "fragile-orders", "handler": "declarative"})
    ingest(event("c1", "C", "order.placed"), event("c2", "C", "payment.captured"))
    corrupt_time("c2")
    fragile()
    wait_for(lambda: status_of("c2") == EventStatus.FAILED, timeout=90, message="C's payment marked failed")

    repair_time("c2")
    events_retry_failed(event_pks=InboxEvent.objects.filter(event_id="c2").values_list("pk", flat=True))

    wait_for(lambda: state_of("C") == "paid", timeout=60, message="order C paid")


def test_an_operator_skips_a_failed_event_and_the_instance_goes_on(fragile, django_user_model):
    # Given order C held by a move its definition does not allow, with a cancellation behind it
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "fragile-orders", "handler": "jumps_ahead"})
    ingest(
        event("c1", "C", "order.placed"),
        event("c2", "C", "payment.captured", jump=True),
        event("c3", "C", "order.cancelled", reason="customer"),
    )
    fragile()
    wait_for(lambda: status_of("c2") == EventStatus.FAILED, timeout=90, message="C's payment marked failed")
    assert status_of("c3") == EventStatus.PENDING

    # When an operator skips it
    operator = django_user_model.objects.create_user(username="olga")
    skipped = events_skip_failed(
        event_pks=InboxEvent.objects.filter(event_id="c2").values_list("pk", flat=True), actor=operator, note="bad feed"
    )

    # Then it is set aside with who and why, and the later event applies
    assert skipped == 1
    wait_for(lambda: state_of("C") == "cancelled", timeout=60, message="order C cancelled")
    c2 = InboxEvent.objects.get(event_id="c2")
    assert (c2.status, c2.reason) == (EventStatus.SKIPPED, "skipped by olga: bad feed")
