"""Duplicates are decided by the unique constraint alone: the insert says which rows it stored, so
the answer (accepted or duplicate) and ``duplicate_count`` are exact, with two producers at once too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import ROOT, _database_url
from tracking.arrival.ingest import IngestResult, RawEvent, events_ingest
from tracking.models import InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db


def order_event(event_id: str, transaction_id: str, event_type: str = "order.placed") -> dict:
    return {
        "event_id": event_id,
        "model_id": "order-fulfilment",
        "transaction_id": transaction_id,
        "event_type": event_type,
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": "test",
    }


def ingest(*envelopes: dict) -> list[IngestResult]:
    return events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")


def answers(results: list[IngestResult]) -> list[tuple[str, str]]:
    return [(result.status, result.event_id) for result in results]


def duplicate_counts() -> dict[str, int]:
    return dict(InboxEvent.objects.values_list("event_id", "duplicate_count"))


def test_a_repeated_id_in_a_batch_and_an_id_seen_before_are_duplicates(example_model):
    # Given e1 stored by an earlier call
    assert answers(ingest(order_event("e1", "A"))) == [("accepted", "e1")]

    # When a batch sends e1 again with other content (twice), e2 three times and e3 once
    results = ingest(
        order_event("e1", "A", "payment.captured"),
        order_event("e2", "B"),
        order_event("e2", "B"),
        order_event("e3", "C"),
        order_event("e2", "B"),
        order_event("e1", "A", "payment.captured"),
    )

    # Then each copy after the first is answered duplicate, and counted once per copy; e1 with
    # another body is a conflict, not counted as a copy
    assert answers(results) == [
        ("conflict", "e1"),
        ("accepted", "e2"),
        ("duplicate", "e2"),
        ("accepted", "e3"),
        ("duplicate", "e2"),
        ("conflict", "e1"),
    ]
    assert duplicate_counts() == {"e1": 0, "e2": 2, "e3": 0}
    # And the first copy is the one kept
    assert InboxEvent.objects.get(event_id="e1").event_type == "order.placed"
    assert InboxEvent.objects.count() == 3

    # And a later call made only of copies stores nothing and counts each of them
    results = ingest(order_event("e3", "C"), order_event("e2", "B"), order_event("e3", "C"))
    assert answers(results) == [("duplicate", "e3"), ("duplicate", "e2"), ("duplicate", "e3")]
    assert duplicate_counts() == {"e1": 0, "e2": 3, "e3": 2}
    assert InboxEvent.objects.count() == 3


def test_a_duplicate_next_to_new_events_and_rejections_keeps_each_answer_in_place(example_model):
    ingest(order_event("e1", "A"))

    results = ingest(
        order_event("e2", "A", "payment.captured"),
        {**order_event("bad", "A"), "model_id": "no-such-model"},
        order_event("e1", "A"),
        order_event("e3", "B"),
    )

    assert answers(results) == [
        ("accepted", "e2"),
        ("rejected", "bad"),
        ("duplicate", "e1"),
        ("accepted", "e3"),
    ]
    assert duplicate_counts() == {"e1": 1, "e2": 0, "e3": 0}


# --- two producers at once (PostgreSQL) --------------------------------------------------------------

BATCHES, BATCH_SIZE = 5, 200


def _shared_batches() -> list[list[dict]]:
    """Five batches of 200 events. Batches 0, 2 and 4 belong to orders whose instance rows exist
    already, so the two producers meet at the insert of the events themselves; batches 1 and 3
    to new orders, so they meet first at the reservation of the instance rows."""
    batches = []
    for batch in range(BATCHES):
        if batch % 2 == 0:
            events = [order_event(f"dup-{batch}-{i}", f"OLD-{i % 100}", "payment.captured") for i in range(BATCH_SIZE)]
        else:
            events = [order_event(f"dup-{batch}-{i}", f"NEW-{batch}-{i}") for i in range(BATCH_SIZE)]
        batches.append(events)
    return batches


def _results(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.integration
def test_two_producers_sending_the_same_events_at_once_store_and_count_each_once(
    transactional_db, postgres_only, example_model, tmp_path
):
    # Given 100 orders that exist already, and one file of five batches that two producers send
    assert {r.status for r in ingest(*(order_event(f"old-{i}", f"OLD-{i}") for i in range(100)))} == {"accepted"}
    batches = _shared_batches()
    shared = tmp_path / "events.jsonl"
    shared.write_text("\n\n".join("\n".join(json.dumps(e) for e in events) for events in batches) + "\n")
    ids = [event["event_id"] for events in batches for event in events]
    assert len(set(ids)) == BATCHES * BATCH_SIZE

    # When two processes ingest it at the same moment, batch for batch, each in its own transaction
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.duplicate_ingester", str(tmp_path), name, other, str(shared)],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _database_url()},
        )
        for name, other in [("shop", "billing"), ("billing", "shop")]
    ]
    for process in processes:
        process.wait(timeout=120)
    errors = [path.read_text() for path in tmp_path.glob("*-failed")]
    assert [process.returncode for process in processes] == [0, 0], errors

    # Then every id was answered accepted to exactly one producer and duplicate to the other
    shop, billing = _results(tmp_path / "shop-results.jsonl"), _results(tmp_path / "billing-results.jsonl")
    assert [r["batch"] for r in shop] == [r["batch"] for r in billing] == list(range(BATCHES))
    assert not [r["rejected"] for r in shop + billing if r["rejected"]]
    accepted = Counter(event_id for r in shop + billing for event_id in r["accepted"])
    duplicates = Counter(event_id for r in shop + billing for event_id in r["duplicate"])
    assert sum(len(r["accepted"]) for r in shop) + sum(len(r["accepted"]) for r in billing) == len(ids)
    assert sum(len(r["duplicate"]) for r in shop) + sum(len(r["duplicate"]) for r in billing) == len(ids)
    assert accepted == duplicates == Counter(ids)
    for ours, theirs in zip(shop, billing, strict=True):
        assert set(ours["accepted"]) == set(theirs["duplicate"]), ours["batch"]
        assert set(ours["duplicate"]) == set(theirs["accepted"]), ours["batch"]

    # And each event is stored once, with its one copy counted
    stored = InboxEvent.objects.filter(event_id__startswith="dup-")
    assert stored.count() == len(ids)
    assert dict(stored.values_list("event_id", "duplicate_count")) == dict.fromkeys(ids, 1)
    # And no instance was made twice
    assert ProcessInstance.objects.filter(transaction_id__startswith="OLD-").count() == 100
    assert ProcessInstance.objects.filter(transaction_id__startswith="NEW-").count() == 2 * BATCH_SIZE


def test_an_id_reused_for_another_transaction_leaves_no_empty_instance(example_model):
    # Given e1 stored for order A
    ingest(order_event("e1", "A"))

    # When e1 comes again for an order that has no other event
    results = ingest(order_event("e1", "Z"))

    # Then it is a conflict (its body differs), and no instance row is left waiting for order Z
    assert answers(results) == [("conflict", "e1")]
    assert list(ProcessInstance.objects.values_list("transaction_id", flat=True)) == ["A"]


@pytest.mark.integration
def test_two_producers_storing_the_same_ids_in_opposite_orders_do_not_fail(
    transactional_db, postgres_only, example_model, tmp_path
):
    # Given the same 5 x 2,000 events in two files, the second with every batch in reverse order:
    # the two inserts take the unique index's entries in opposite orders, which can deadlock
    batches = [[order_event(f"rev-{b}-{i}", f"REV-{i}", "order.placed") for i in range(2000)] for b in range(5)]
    for name, order in (("shop", 1), ("billing", -1)):
        text = "\n\n".join("\n".join(json.dumps(e) for e in events[::order]) for events in batches)
        (tmp_path / f"{name}.jsonl").write_text(text + "\n")

    # When two processes ingest them at the same moment, batch for batch
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.concurrent_ingester",
                str(tmp_path),
                name,
                other,
                str(tmp_path / f"{name}.jsonl"),
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _database_url()},
        )
        for name, other in [("shop", "billing"), ("billing", "shop")]
    ]
    for process in processes:
        process.wait(timeout=120)

    # Then neither fails (a deadlock is retried), and every event is stored once, its copy counted
    errors = [path.read_text() for path in tmp_path.glob("*-failed")]
    assert [process.returncode for process in processes] == [0, 0], errors
    stored = InboxEvent.objects.filter(event_id__startswith="rev-")
    assert stored.count() == 10000
    assert set(stored.values_list("duplicate_count", flat=True)) == {1}
