"""The Kinesis consumer while the broker is down: a batch is stored and checkpointed all the same.

Sending the apply tasks after the commit is best effort (tracking/inbox/dispatch.py); a failure to
send them must neither fail the batch (which the consumer would then split and dead-letter record
by record) nor hold back the checkpoint. The worker's sweep on reconnection sends the work later
(tests/tracking/inbox/test_broker_restart.py).
"""

import json
from datetime import timedelta

import pytest

from tests.broker import celery_broker, free_port
from tests.conftest import load_example_model
from tracking.arrival.kinesis.consumer import ConsumerSettings, KinesisConsumer, ShardReader
from tracking.arrival.kinesis.leases import lease_take, lease_views, leases_sync
from tracking.arrival.kinesis.services import UserRecord
from tracking.models import DeadLetter, EventStatus, InboxEvent, ShardLease

pytestmark = pytest.mark.django_db(transaction=True)


def _envelope(n: int) -> bytes:
    return json.dumps(
        {"event_id": f"e-{n}", "model_id": "order-fulfilment", "transaction_id": f"T-{n}", "event_type": "order.placed"}
    ).encode()


def test_a_batch_is_stored_and_checkpointed_while_the_broker_is_down(caplog):
    # Given a consumer holding a shard's lease, and a broker where nothing listens
    load_example_model()
    consumer = KinesisConsumer(
        settings=ConsumerSettings(stream="orders", worker_id="w", lease_duration=timedelta(seconds=30)), client=None
    )
    leases_sync(stream="orders", shards=[{"ShardId": "shardId-000000000000"}])
    reader = ShardReader(
        lease=lease_take(view=lease_views(stream="orders")[0], worker="w", duration=timedelta(seconds=30))
    )
    records = [UserRecord(str(100 + n), 0, _envelope(n)) for n in range(3)]

    # When it processes a batch
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        consumer.process_batch(reader, records)

    # Then the records are stored as pending events, the checkpoint is past them, nothing is
    # dead-lettered, and the tasks that could not be sent are logged
    assert set(InboxEvent.objects.values_list("event_id", "status")) == {
        (f"e-{n}", EventStatus.PENDING) for n in range(3)
    }
    lease = ShardLease.objects.get()
    assert (lease.checkpoint_sequence, lease.records_processed) == ("102", 3)
    assert not DeadLetter.objects.exists()
    assert "could not send apply tasks for 3 instances" in caplog.text
