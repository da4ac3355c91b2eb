"""``KinesisConsumer.process_batch`` in this process: what cannot be sent through kinesalite.

Kinesis refuses records over 1 MiB at the door (kinesalite too), so the consumer's handling of an
over-size record is shown here; and a record that passes validation but that the database refuses
cannot be made with real data any more, so that case is simulated by refusing one payload.
"""

import json
from datetime import timedelta

import pytest
from django.db import DataError

from tests.conftest import load_example_model
from tracking.arrival.kinesis import services as kinesis_services
from tracking.arrival.kinesis.consumer import ConsumerSettings, KinesisConsumer, ShardReader
from tracking.arrival.kinesis.leases import lease_take, lease_views, leases_sync
from tracking.arrival.kinesis.services import UserRecord
from tracking.models import DeadLetter, InboxEvent, ShardLease

pytestmark = pytest.mark.django_db(transaction=True)


def _consumer_with_lease():
    consumer = KinesisConsumer(
        settings=ConsumerSettings(stream="orders", worker_id="w", lease_duration=timedelta(seconds=30)), client=None
    )
    leases_sync(stream="orders", shards=[{"ShardId": "shardId-000000000000"}])
    held = lease_take(view=lease_views(stream="orders")[0], worker="w", duration=timedelta(seconds=30))
    return consumer, ShardReader(lease=held)


def _envelope(n: int, **extra) -> bytes:
    return json.dumps(
        {
            "event_id": f"e-{n}",
            "model_id": "order-fulfilment",
            "transaction_id": f"T-{n}",
            "event_type": "order.placed",
            **extra,
        }
    ).encode()


def test_an_over_size_record_is_dead_lettered_and_the_batch_goes_on():
    load_example_model()
    consumer, reader = _consumer_with_lease()
    huge = _envelope(2, data={"blob": "x" * (1024 * 1024)})
    records = [UserRecord("100", 0, _envelope(1)), UserRecord("101", 0, huge), UserRecord("102", 0, _envelope(3))]

    consumer.process_batch(reader, records)

    assert sorted(InboxEvent.objects.values_list("event_id", flat=True)) == ["e-1", "e-3"]
    letter = DeadLetter.objects.get()
    assert letter.source_ref == "orders/shardId-000000000000/101"
    assert "larger than 1048576 bytes" in letter.reason
    assert bytes(letter.raw) == huge
    assert ShardLease.objects.get().checkpoint_sequence == "102"


def test_a_record_whose_time_falls_outside_the_years_the_database_holds_is_dead_lettered():
    load_example_model()
    consumer, reader = _consumer_with_lease()
    early = _envelope(2, occurred_at="0001-01-01T00:00:00+01:00")
    records = [UserRecord("100", 0, _envelope(1)), UserRecord("101", 0, early), UserRecord("102", 0, _envelope(3))]

    consumer.process_batch(reader, records)

    assert sorted(InboxEvent.objects.values_list("event_id", flat=True)) == ["e-1", "e-3"]
    letter = DeadLetter.objects.get()
    assert (letter.field, bytes(letter.raw)) == ("occurred_at", early)
    assert "years 1 to 9999" in letter.reason
    assert ShardLease.objects.get().checkpoint_sequence == "102"


def test_a_record_the_database_refuses_is_found_by_bisecting_and_dead_lettered(monkeypatch):
    load_example_model()
    consumer, reader = _consumer_with_lease()
    refused = _envelope(5)
    real_ingest = kinesis_services.events_ingest

    def ingest_refusing_one(*, items, source_kind):
        if any(item.payload == refused for item in items):
            raise DataError("value refused by the database")
        return real_ingest(items=items, source_kind=source_kind)

    monkeypatch.setattr(kinesis_services, "events_ingest", ingest_refusing_one)
    records = [UserRecord(str(100 + n), 0, _envelope(n) if n != 5 else refused) for n in range(8)]

    consumer.process_batch(reader, records)

    assert InboxEvent.objects.count() == 7
    letter = DeadLetter.objects.get()
    assert letter.source_ref == "orders/shardId-000000000000/105"
    assert "DataError: value refused by the database" in letter.reason
    lease = ShardLease.objects.get()
    assert (lease.checkpoint_sequence, lease.records_processed) == ("107", 8)


def test_a_record_reusing_an_event_id_with_another_body_is_dead_lettered_and_logged(caplog):
    # Given e-1 stored from an earlier record
    load_example_model()
    consumer, reader = _consumer_with_lease()
    consumer.process_batch(reader, [UserRecord("100", 0, _envelope(1))])

    # When a later record reuses its id for another transaction, beside a redelivery of the first
    other = _envelope(1, transaction_id="T-other")
    with caplog.at_level("WARNING", logger="tracking.arrival.kinesis.consumer"):
        consumer.process_batch(reader, [UserRecord("101", 0, other), UserRecord("102", 0, _envelope(1))])

    # Then it is not stored or applied, but kept as a dead letter and logged; the redelivery is a duplicate
    assert list(InboxEvent.objects.values_list("event_id", "envelope__transaction_id", "duplicate_count")) == [
        ("e-1", "T-1", 1)
    ]
    letter = DeadLetter.objects.get()
    assert (letter.field, letter.source_ref, bytes(letter.raw)) == (
        "event_id",
        "orders/shardId-000000000000/101",
        other,
    )
    assert letter.reason.startswith("conflict: event_id 'e-1' was stored before with a different body")
    assert "dead-lettered orders/shardId-000000000000/101: event_id: event_id 'e-1' was stored before" in caplog.text
    assert ShardLease.objects.get().checkpoint_sequence == "102"
