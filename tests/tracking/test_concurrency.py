"""Concurrency on PostgreSQL: several appliers on one transaction's events at once, and the same
apply task delivered twice to two worker processes: arrival order kept, nothing applied twice."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter

import pytest
import yaml
from django.db import connection

import tests.gated_handler  # noqa: F401 - registers the "gated" handler in this process too
from models_registry.services import model_import
from tests.conftest import EXAMPLES, ROOT, _database_url, is_postgres, wait_for
from tests.gated_handler import GATE_ENV, entered, open_gate
from tests.reference_replay import replay
from tests.service_state import expected, nothing_pending, observed
from tracking.apply.applier import instances_apply_pending
from tracking.apply.tasks import apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import InboxEvent, ProcessInstance, TransitionRecord

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (set DATABASE_URL)"),
]

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())
# One order's life, in an order that parks most of it until the order exists and is paid.
LIFE = [
    ("carrier.delivered", {}),
    ("warehouse.packed", {}),
    ("carrier.picked_up", {"carrier": "DHL", "tracking_number": "JD1"}),
    ("payment.failed", {}),
    ("order.placed", {}),
    ("payment.captured", {}),
    ("order.cancelled", {}),  # no reason: ignored
]


def order_events(model_id: str, transactions: list[str]) -> list[dict]:
    """Every transaction's life, interleaved across transactions."""
    events = []
    for step, (event_type, data) in enumerate(LIFE):
        for transaction_id in transactions:
            events.append(
                {
                    "event_id": f"{transaction_id}-{step}",
                    "model_id": model_id,
                    "transaction_id": transaction_id,
                    "event_type": event_type,
                    "occurred_at": f"2026-11-26T10:{step:02d}:00Z",
                    "source": "test",
                    "data": data,
                }
            )
    return events


def ingest_one_by_one(envelopes: list[dict]) -> None:
    for envelope in envelopes:
        result = events_ingest(items=[RawEvent(json.dumps(envelope).encode())], source_kind="file")
        assert result[0].status in ("accepted", "duplicate")


def assert_applied_once_in_order(model_id: str, document: dict, deliveries: list[dict]) -> None:
    history_events = list(
        TransitionRecord.objects.filter(instance__model__key=model_id).values_list("event__event_id", flat=True)
    )
    assert len(history_events) == len(set(history_events)), Counter(history_events).most_common(3)
    assert observed(model_id) == expected(replay(document, deliveries))


@pytest.mark.django_db(transaction=True)
def test_several_appliers_at_once_while_events_arrive():
    # Given a model and five orders whose events will arrive one by one
    document = {**copy.deepcopy(EXAMPLE), "id": "busy-orders"}
    model_import(document=document)
    transactions = [f"ORD-{i}" for i in range(5)]
    envelopes = order_events("busy-orders", transactions)
    # Each order starts with an event that reserves its instance row, so appliers have rows to lock
    ingest_one_by_one(envelopes[: len(transactions)])

    # When four appliers run the service (and the task body) over random subsets of the
    # instances, all at once, while the rest of the events arrive
    arriving = threading.Event()
    arriving.set()
    decided: Counter = Counter()
    failures: list[BaseException] = []

    def applier(number: int) -> None:
        chooser = random.Random(number)
        try:
            while True:
                still_arriving = arriving.is_set()
                ids = list(ProcessInstance.objects.filter(model__key="busy-orders").values_list("pk", flat=True))
                chooser.shuffle(ids)
                subset = ids[: chooser.randint(1, len(ids))]
                if number % 2:
                    decided[number] += apply_pending(subset)
                else:
                    decided[number] += instances_apply_pending(instance_ids=subset).decided
                if not still_arriving:
                    # One last pass over everything after the last event arrived
                    decided[number] += instances_apply_pending(instance_ids=ids).decided
                    return
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=applier, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    ingest_one_by_one(envelopes[len(transactions) :])
    arriving.clear()
    for thread in threads:
        thread.join(timeout=120)

    # Then no applier failed, every event was decided, and the result is the spec's, in order
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    assert nothing_pending("busy-orders")
    assert sum(decided.values()) >= len(envelopes)
    assert_applied_once_in_order("busy-orders", document, envelopes)
    states = dict(ProcessInstance.objects.values_list("transaction_id", "state"))
    assert states == dict.fromkeys(transactions, "delivered")


def test_the_same_task_delivered_twice_to_two_workers(start_worker, tmp_path):
    from statustracker.celery import app

    # Given a gated model, its events stored, and its apply task in the queue twice
    document = {**copy.deepcopy(EXAMPLE), "id": "twice-orders", "handler": "gated"}
    model_import(document=document)
    envelopes = order_events("twice-orders", ["ORD-A", "ORD-B"])
    events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")
    instance_ids = list(ProcessInstance.objects.values_list("pk", flat=True))
    enqueue_instances(dict.fromkeys(instance_ids, ""))

    # When two worker processes, one task in hand each at most, take them
    worker_env = {
        "STATUSTRACKER_HANDLER_MODULES": "tests.gated_handler",
        GATE_ENV: str(tmp_path),
        "CELERY_PREFETCH_MULTIPLIER": "1",
    }
    start_worker(concurrency=1, extra_env=worker_env)
    start_worker(concurrency=1, extra_env=worker_env)

    def both_busy_with_the_same_task():
        active = app.control.inspect(timeout=1).active() or {}
        tasks = [task for tasks in active.values() for task in tasks if task["name"] == apply_pending.name]
        return len(active) == 2 and len(tasks) == 2 and tasks[0]["args"] == tasks[1]["args"]

    wait_for(both_busy_with_the_same_task, timeout=60, message="both workers to hold the task at once")
    # one holds the row locks inside the handler, the other waits for them
    assert len({pid for pid, _ in entered(tmp_path)}) == 1
    open_gate(tmp_path)
    wait_for(lambda: nothing_pending("twice-orders"), message="the events to be applied")

    def both_idle():
        active = app.control.inspect(timeout=1).active() or {}
        return len(active) == 2 and not any(active.values())

    wait_for(both_idle, message="both workers to finish their task")

    # Then only one process ever decided events: the second delivery found nothing to do
    assert len({pid for pid, _ in entered(tmp_path)}) == 1
    assert InboxEvent.objects.filter(status="pending").count() == 0
    assert_applied_once_in_order("twice-orders", {**document, "handler": "declarative"}, envelopes)


@pytest.mark.django_db(transaction=True)
def test_two_ingesters_at_once_with_the_same_new_transactions(tmp_path):
    """Two processes (whose sets iterate in different orders) store, batch for batch at the same
    moment, events that create the same instances: they wait for each other's new rows in one
    order instead of deadlocking."""
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "shared-orders"})
    files = {}
    for producer in ("shop", "billing"):
        blocks = []
        for batch in range(10):
            lines = [
                json.dumps(
                    {
                        "event_id": f"{producer}-{batch}-{i}",
                        "model_id": "shared-orders",
                        "transaction_id": f"ORD-{batch}-{i}",
                        "event_type": "order.placed" if producer == "shop" else "payment.captured",
                    }
                )
                for i in range(300)
            ]
            blocks.append("\n".join(lines))
        files[producer] = tmp_path / f"{producer}.jsonl"
        files[producer].write_text("\n\n".join(blocks) + "\n")

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_ingester", str(tmp_path), name, other, str(files[name])],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _database_url(), "PYTHONHASHSEED": str(seed)},
        )
        for seed, (name, other) in enumerate([("shop", "billing"), ("billing", "shop")], start=1)
    ]
    for process in processes:
        process.wait(timeout=120)

    errors = [path.read_text() for path in tmp_path.glob("*-failed")]
    assert [process.returncode for process in processes] == [0, 0], errors
    assert ProcessInstance.objects.filter(model__key="shared-orders").count() == 3000
    assert InboxEvent.objects.filter(model__key="shared-orders").count() == 6000


def test_ingestion_is_not_held_up_by_a_worker_holding_the_instance(start_worker, tmp_path):
    # Given a worker that holds order A's row lock, inside a slow handler
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "slow-orders", "handler": "gated"})
    start_worker(
        concurrency=1, extra_env={"STATUSTRACKER_HANDLER_MODULES": "tests.gated_handler", GATE_ENV: str(tmp_path)}
    )
    envelopes = order_events("slow-orders", ["A"])
    by_type = {e["event_type"]: e for e in envelopes}
    ingest_one_by_one([by_type["order.placed"]])
    wait_for(lambda: entered(tmp_path), message="the worker to take order A")

    # When more events of order A (and of a new order B) arrive meanwhile
    done = threading.Event()
    failures: list[BaseException] = []

    def producer():
        try:
            ingest_one_by_one(
                [by_type["payment.captured"], {**by_type["order.placed"], "event_id": "B-4", "transaction_id": "B"}]
            )
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        # Then they are stored while the worker still holds A (the inbox does not wait for it)
        wait_for(done.is_set, timeout=30, message="ingestion while a worker holds the instance")
        assert not failures, failures
        assert entered(tmp_path)
        assert not (tmp_path / "open").exists()
    finally:
        open_gate(tmp_path)
        thread.join(timeout=60)

    # And once the worker goes on, everything applies
    wait_for(lambda: nothing_pending("slow-orders"), message="the events to be applied")
    assert dict(ProcessInstance.objects.values_list("transaction_id", "state")) == {"A": "paid", "B": "received"}
