"""Workers keep their database connection from task to task, and replace one that broke."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from tests.conftest import load_example_model, wait_for
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent

pytestmark = [pytest.mark.integration]


def _other_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


def _ingest_and_wait(batch: int) -> None:
    envelopes = [
        {
            "event_id": f"b{batch}-{n}",
            "model_id": "order-fulfilment",
            "transaction_id": f"ORD-{batch}-{n}",
            "event_type": "order.placed",
            "data": {},
        }
        for n in range(3)
    ]
    events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")
    wait_for(
        lambda: not InboxEvent.objects.filter(status=EventStatus.PENDING).exists(), message=f"batch {batch} applied"
    )


def test_a_worker_keeps_its_connection_and_replaces_a_broken_one(postgres_only, start_worker):
    load_example_model()
    start_worker(concurrency=1)
    _ingest_and_wait(0)
    first = _other_backends()
    assert len(first) == 1, first

    # Each batch is a task of its own; the same PostgreSQL backend serves them all.
    for batch in range(1, 5):
        _ingest_and_wait(batch)
    assert _other_backends() == first

    # A connection that breaks (database restart, idle timeout, a proxy) is dropped after the
    # task that met it fails; the task's retry runs on a new connection.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [next(iter(first))])
    wait_for(lambda: not (_other_backends() & first), message="backend gone")
    _ingest_and_wait(5)
    assert InboxEvent.objects.filter(status=EventStatus.APPLIED).count() == 18
    now = _other_backends()
    assert now
    assert not (now & first)
