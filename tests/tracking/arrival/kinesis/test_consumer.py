"""The Kinesis consumer end to end: kinesalite over HTTP, consumer processes, Celery worker processes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from aws_kinesis_agg.aggregator import AggRecord
from django.db import connection

from tests.conftest import is_postgres, load_example_model, wait_for
from tests.tracking.arrival.kinesis.conftest import (
    LEASE_SECONDS,
    FaultPlan,
    assert_matches_replay,
    assert_one_reader_at_a_time,
    inbox_counts,
    order_events,
    publish,
    read_stream,
)
from tracking.arrival.kinesis.consumer import ConsumerSettings, KinesisConsumer, user_records
from tracking.arrival.kinesis.emulator import local_client
from tracking.arrival.kinesis.producer import records_publish
from tracking.inbox.sweep import pending_sweep
from tracking.models import DeadLetter, EventStatus, InboxEvent, ShardLease

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _distinct(envelopes):
    return len({e["event_id"] for e in envelopes})


def _pending_done():
    return not InboxEvent.objects.filter(status=EventStatus.PENDING).exists()


def _pending_done_with_the_sweep():
    """``_pending_done``, with the periodic sweep run as beat would run it (beat is not running here).

    A consumer killed between its commit and its send of the apply tasks leaves stored events whose
    tasks were never sent; its checkpoint is past them, so no other consumer reads them again, and
    it is the sweep's job to send them (docs/architecture.md, "Safety nets").
    """
    if _pending_done():
        return True
    pending_sweep(older_than=timedelta(seconds=10))
    return False


def _stored(n):
    return lambda: InboxEvent.objects.count() >= n


class Publisher(threading.Thread):
    """Publishes envelopes in chunks at a steady pace, as producers would while the consumers run."""

    def __init__(self, client, stream, envelopes, *, chunk=500, pause=0.2):
        super().__init__(daemon=True)
        self.client, self.stream, self.envelopes = client, stream, envelopes
        self.chunk, self.pause = chunk, pause
        self.published = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            for start in range(0, len(self.envelopes), self.chunk):
                chunk = self.envelopes[start : start + self.chunk]
                publish(self.client, self.stream, chunk)
                self.published += len(chunk)
                time.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self):
        self.join(timeout=300)
        assert self.error is None, self.error
        assert self.published == len(self.envelopes)


def test_three_consumers_share_four_shards_and_survive_a_sigkill(kinesis, new_stream, start_consumer, start_worker):
    # Given three consumers on a 4-shard stream, balanced, and two Celery worker processes
    load_example_model()
    stream = new_stream(shards=4)
    envelopes = order_events(count=20_000, seed=1, in_flight=400)
    consumers = [start_consumer(stream, worker_id=f"c{i}", args=["--batch-size=500"]) for i in (1, 2, 3)]
    start_worker(concurrency=2)
    wait_for(
        lambda: (
            sorted(Counter(ShardLease.objects.filter(stream=stream).values_list("owner", flat=True)).values())
            == [1, 1, 2]
        ),
        timeout=60,
        message="each of the three consumers holds a fair share of the four shards",
    )

    # When the events are published and one consumer is killed with SIGKILL half way
    publisher = Publisher(kinesis, stream, envelopes)
    publisher.start()
    wait_for(_stored(6_000), timeout=120, message="a third of the events stored")
    owners = Counter(ShardLease.objects.filter(stream=stream).values_list("owner", flat=True))
    victim = next(c for c in consumers if c.worker_id == owners.most_common(1)[0][0])
    victim_shards = set(
        ShardLease.objects.filter(stream=stream, owner=victim.worker_id).values_list("shard_id", flat=True)
    )
    victim.kill()
    checkpoints_at_kill = {
        lease.shard_id: int(lease.checkpoint_sequence or 0)
        for lease in ShardLease.objects.filter(stream=stream, shard_id__in=victim_shards)
    }
    publisher.finish()

    # Then every event is stored once, the victim's shards moved on, and the end states equal a replay
    wait_for(_stored(_distinct(envelopes)), timeout=180, message="every event stored")
    wait_for(_pending_done_with_the_sweep, timeout=180, interval=1.0, message="every event applied")
    stored, duplicates = inbox_counts()
    assert stored == _distinct(envelopes)
    assert duplicates == len(envelopes) - _distinct(envelopes)
    survivors = [c for c in consumers if c is not victim]
    taken_over = {e["shard"] for c in survivors for e in c.events("lease_acquired") if e["ts"] > victim.killed_at}
    assert victim_shards
    assert victim_shards <= taken_over
    for shard_id, checkpoint in checkpoints_at_kill.items():
        later = [
            ref
            for ref in InboxEvent.objects.filter(source_ref__contains=f"/{shard_id}/").values_list(
                "source_ref", flat=True
            )
            if int(ref.rsplit("/", 1)[1]) > checkpoint
        ]
        assert later, f"nothing of {shard_id} was read after the kill"
    assert assert_one_reader_at_a_time(consumers) >= len(victim_shards)
    assert_matches_replay(envelopes)
    for consumer in survivors:
        assert consumer.terminate() == 0


def test_split_and_merge_while_producing_keep_each_transactions_order(
    kinesis, new_stream, start_consumer, start_worker
):
    # Given two consumers reading a 2-shard stream while events are being published
    load_example_model()
    stream = new_stream(shards=2)
    envelopes = order_events(count=4_000, seed=2, in_flight=150)
    consumers = [start_consumer(stream, worker_id=f"r{i}", args=["--batch-size=100"]) for i in (1, 2)]
    start_worker(concurrency=2)
    publisher = Publisher(kinesis, stream, envelopes, chunk=200, pause=0.25)
    publisher.start()

    # When shard 0 is split and then its upper child is merged with shard 1, while publishing
    wait_for(lambda: publisher.published >= 1_200, timeout=60, message="a part published")
    shard0 = kinesis.list_shards(StreamName=stream)["Shards"][0]
    low, high = int(shard0["HashKeyRange"]["StartingHashKey"]), int(shard0["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=stream, ShardToSplit=shard0["ShardId"], NewStartingHashKey=str((low + high) // 2))
    wait_for(lambda: _active(kinesis, stream), message="split done")
    wait_for(lambda: publisher.published >= 2_600, timeout=60, message="more published")
    open_shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]}  # fmt: skip
    upper_child = max(
        (s for s in open_shards.values() if s.get("ParentShardId") == shard0["ShardId"]),
        key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
    )
    kinesis.merge_shards(
        StreamName=stream, ShardToMerge=upper_child["ShardId"], AdjacentShardToMerge="shardId-000000000001"
    )
    wait_for(lambda: _active(kinesis, stream), message="merge done")
    publisher.finish()

    # Then every event is stored once and applied in its transaction's order
    wait_for(_stored(_distinct(envelopes)), timeout=120, message="every event stored")
    wait_for(_pending_done, timeout=120, message="every event applied")
    leases = {lease.shard_id: lease for lease in ShardLease.objects.filter(stream=stream)}
    assert len(leases) == 5  # 2 + 2 children of the split + 1 of the merge
    assert leases[shard0["ShardId"]].finished
    assert leases["shardId-000000000001"].finished
    assert leases[upper_child["ShardId"]].finished
    sources = Counter(ref.split("/")[1] for ref in InboxEvent.objects.values_list("source_ref", flat=True))
    assert all(sources[shard] > 0 for shard in leases), sources  # every shard, parents and children, was read
    stored, duplicates = inbox_counts()
    assert (stored, duplicates) == (_distinct(envelopes), len(envelopes) - _distinct(envelopes))
    published_order: dict[str, list[str]] = {}
    for envelope in envelopes:
        ids = published_order.setdefault(envelope["transaction_id"], [])
        if envelope["event_id"] not in ids:
            ids.append(envelope["event_id"])
    arrival_order: dict[str, list[str]] = {}
    for transaction_id, event_id in InboxEvent.objects.order_by("id").values_list(
        "instance__transaction_id", "event_id"
    ):
        arrival_order.setdefault(transaction_id, []).append(event_id)
    assert arrival_order == published_order
    assert_matches_replay(envelopes)
    assert_one_reader_at_a_time(consumers)


def _active(client, stream):
    return client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_throttling_server_errors_and_expired_iterators_lose_and_double_nothing(
    kinesis, new_stream, start_consumer, start_worker, fault_proxy
):
    # Given a proxy that throttles, fails, drops connections and expires iterators
    load_example_model()
    stream = new_stream(shards=2)
    proxy = fault_proxy(
        FaultPlan(
            rates={
                "GetRecords": {
                    "throttle": 0.1,
                    "internal": 0.05,
                    "unavailable": 0.04,
                    "expired": 0.1,
                    "reset": 0.03,
                    "lose_response": 0.05,
                },
                "GetShardIterator": {"throttle": 0.15, "internal": 0.05, "reset": 0.03},
                "ListShards": {"limit": 0.2, "internal": 0.1},
                "PutRecords": {"partial": 0.3, "throttle": 0.1, "internal": 0.05, "reset": 0.03, "lose_response": 0.05},
            },
            forced={
                "GetRecords": ["throttle", "expired", "internal", "reset", "lose_response", "unavailable"] * 2,
                "GetShardIterator": ["throttle", "internal"],
                "PutRecords": ["partial", "lose_response", "partial"],
            },
        )
    )
    proxy.enabled = False  # the consumers' start-up check goes through untouched
    envelopes = order_events(count=3_000, seed=4, in_flight=100)
    consumers = [
        start_consumer(stream, worker_id=f"f{i}", endpoint_url=proxy.endpoint_url, args=["--batch-size=100"])
        for i in (1, 2)
    ]
    start_worker(concurrency=2)
    wait_for(lambda: any(c.events("started") for c in consumers) and all(c.events("started") for c in consumers),
             timeout=60, message="consumers started")  # fmt: skip
    proxy.enabled = True

    # When the events are published through the same proxy
    client = local_client(proxy.endpoint_url)
    lines = ((n, json.dumps(e).encode()) for n, e in enumerate(envelopes, start=1))
    report = records_publish(client=client, stream=stream, lines=lines)

    # Then every record on the stream is stored once; copies the producer wrote twice count as duplicates
    on_stream = Counter(
        json.loads(record["Data"])["event_id"]
        for records in read_stream(kinesis, stream).values()
        for record in records
    )
    assert set(on_stream) == {e["event_id"] for e in envelopes}
    wait_for(_stored(len(on_stream)), timeout=120, message="every event stored")
    wait_for(_pending_done, timeout=120, message="every event applied")
    duplicates = dict(InboxEvent.objects.values_list("event_id", "duplicate_count"))
    assert duplicates == {event_id: copies - 1 for event_id, copies in on_stream.items()}
    faults = dict(proxy.injected)
    for fault in ("GetRecords:throttle", "GetRecords:expired", "GetRecords:internal", "GetRecords:reset",
                  "GetRecords:lose_response", "PutRecords:partial", "GetShardIterator:throttle"):  # fmt: skip
        assert faults.get(fault, 0) > 0, (fault, faults)
    assert report.retried_records > 0
    retries = Counter(e["cause"] for c in consumers for e in c.events("retry"))
    assert {"throttled", "server_error", "connection", "expired_iterator"} <= set(retries), retries
    stream_order = [json.loads(r["Data"]) for records in read_stream(kinesis, stream).values() for r in records]
    assert_matches_replay(stream_order)


def _aggregate(envelopes, *, per_record):
    """KPL-style aggregated records of ``per_record`` user records each."""
    records = []
    for start in range(0, len(envelopes), per_record):
        aggregate = AggRecord()
        for envelope in envelopes[start : start + per_record]:
            aggregate.add_user_record(envelope["transaction_id"], json.dumps(envelope).encode())
        partition_key, explicit_hash_key, data = aggregate.get_contents()
        records.append({"Data": data, "PartitionKey": partition_key})
    return records


def test_kpl_aggregated_records_with_a_restart_inside_one(kinesis, new_stream, start_consumer):
    # Given aggregated records of 10 user records each; a third of the envelopes have no event id
    load_example_model()
    stream = new_stream(shards=1)
    envelopes = order_events(count=400, seed=5, in_flight=30)
    envelopes = [e for i, e in enumerate(envelopes) if envelopes.index(e) == i]  # no redeliveries here
    for envelope in envelopes[::3]:
        del envelope["event_id"]
    aggregates = _aggregate(envelopes, per_record=10)
    for start in range(0, len(aggregates), 20):
        assert kinesis.put_records(StreamName=stream, Records=aggregates[start : start + 20])["FailedRecordCount"] == 0

    # When a worker stores the first 3 user records of the first aggregate and dies without releasing
    crashing = KinesisConsumer(
        settings=ConsumerSettings(
            stream=stream, worker_id="crashed", batch_size=3, lease_duration=timedelta(seconds=LEASE_SECONDS)
        ),
        client=kinesis,
    )
    crashing.sync_shards()
    crashing.balance_leases()
    reader = crashing.readers["shardId-000000000000"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first = user_records(kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"])
    assert len(first) == 10
    assert all(r.aggregated for r in first)
    crashing.process_batch(reader, first[:3])
    lease = ShardLease.objects.get(stream=stream)
    assert (lease.checkpoint_sequence, lease.checkpoint_sub_sequence) == (first[0].sequence, 2)

    # ... and a consumer process takes over, is stopped half way, and another one finishes
    second = start_consumer(stream, worker_id="k1", args=["--batch-size=4"])
    wait_for(_stored(150), timeout=60, message="part of the stream stored")
    assert second.terminate() == 0
    stopped_at = ShardLease.objects.get(stream=stream)
    third = start_consumer(stream, worker_id="k2", args=["--batch-size=4"])
    wait_for(_stored(len(envelopes)), timeout=60, message="every user record stored")
    assert third.terminate() == 0

    # Then every user record is stored exactly once, under its own id
    stored, duplicates = inbox_counts()
    assert (stored, duplicates) == (len(envelopes), 0)
    resumed = second.events("lease_acquired")[0]
    assert (resumed["sequence"], resumed["sub_sequence"]) == (first[0].sequence, 2)
    assert third.events("lease_acquired")[0]["sub_sequence"] == stopped_at.checkpoint_sub_sequence
    without_id = InboxEvent.objects.exclude(event_id__in=[e["event_id"] for e in envelopes if "event_id" in e])
    assert without_id.count() == len(envelopes[::3])
    for event_id, source_ref in without_id.values_list("event_id", "source_ref"):
        assert event_id == source_ref
        assert event_id.count("/") == 3
    sub_sequences = {int(ref.rsplit("/", 1)[1]) for ref in InboxEvent.objects.values_list("source_ref", flat=True)}
    assert sub_sequences == set(range(10))


def _nested(depth):
    return "{" + '"a":{' * depth + "}" * depth + "}"


def test_poison_records_are_dead_lettered_and_the_shard_goes_on(kinesis, new_stream, start_consumer):
    # Given a stream where bad records sit between good ones
    load_example_model()
    stream = new_stream(shards=1)
    good = list({e["event_id"]: e for e in order_events(count=40, seed=6)}.values())
    base = {"model_id": "order-fulfilment", "transaction_id": "P-1", "event_type": "order.placed"}
    poison = {
        b"this is not JSON": "not JSON",
        b"[1, 2, 3]": "JSON object",
        b'{"model_id": "order-fulfilment", "event_type": "order.placed"}': "required",
        json.dumps({**base, "event_id": "deep", "data": json.loads(_nested(40))}).encode(): "nested deeper",
        json.dumps({**base, "event_id": "nobody", "model_id": "no-such-model"}).encode(): "unknown model",
        b'{"event_id": "\xff\xfe", "model_id": "x"}': "UTF-8",
        json.dumps({**base, "event_id": "x" * 129}).encode(): "128",
    }
    lines = [json.dumps(e).encode() for e in good[:10]] + list(poison) + [json.dumps(e).encode() for e in good[10:]]
    report = records_publish(client=kinesis, stream=stream, lines=enumerate(lines, start=1), raw=True)
    assert report.published == len(lines)

    # When a consumer reads it
    consumer = start_consumer(stream, args=["--batch-size=5"])
    wait_for(lambda: DeadLetter.objects.count() == len(poison) and InboxEvent.objects.count() == len(good),
             timeout=60, message="good records stored, bad ones dead-lettered")  # fmt: skip
    assert consumer.terminate() == 0

    # Then each bad record is a dead letter with its stream, shard, sequence number, bytes and reason
    records = read_stream(kinesis, stream)["shardId-000000000000"]
    sequence_of = {bytes(r["Data"]): r["SequenceNumber"] for r in records}
    for letter in DeadLetter.objects.all():
        raw = bytes(letter.raw)
        assert letter.source_kind == "kinesis"
        assert letter.source_ref == f"{stream}/shardId-000000000000/{sequence_of[raw]}"
        assert poison[raw].lower() in letter.reason.lower(), (raw[:60], letter.reason)
    lease = ShardLease.objects.get(stream=stream)
    assert lease.checkpoint_sequence == records[-1]["SequenceNumber"]
    assert lease.records_processed == len(lines)
    assert len(consumer.events("dead_letter")) == len(poison)


def test_sigterm_checkpoints_releases_leases_and_exits_zero(kinesis, new_stream, start_consumer):
    # Given a consumer in the middle of a stream
    load_example_model()
    stream = new_stream(shards=2)
    envelopes = order_events(count=3_000, seed=8)
    publish(kinesis, stream, envelopes)
    consumer = start_consumer(stream, args=["--batch-size=50"])
    wait_for(_stored(400), timeout=60, message="some events stored")

    # When it gets SIGTERM
    status = consumer.terminate()

    # Then it exits 0, with its leases released and each checkpoint at the last record it stored
    assert status == 0
    assert InboxEvent.objects.count() < _distinct(envelopes)
    leases = list(ShardLease.objects.filter(stream=stream))
    assert [lease.owner for lease in leases] == ["", ""]
    for lease in leases:
        refs = InboxEvent.objects.filter(source_ref__startswith=f"{stream}/{lease.shard_id}/").values_list(
            "source_ref", flat=True
        )
        assert lease.checkpoint_sequence == str(max(int(ref.rsplit("/", 1)[1]) for ref in refs))
    released = {e["shard"] for e in consumer.events("lease_dropped") if e["reason"] == "released"}
    assert released == {lease.shard_id for lease in leases}
    assert consumer.events("stopped")

    # ... and the next consumer goes on from the checkpoints, storing nothing twice
    successor = start_consumer(stream, worker_id="successor")
    wait_for(_stored(_distinct(envelopes)), timeout=60, message="the rest stored")
    assert successor.terminate() == 0
    assert inbox_counts() == (_distinct(envelopes), len(envelopes) - _distinct(envelopes))


def test_a_lost_database_connection_is_waited_out_and_nothing_is_lost_or_doubled(kinesis, new_stream, start_consumer):
    if not is_postgres():
        pytest.skip("needs PostgreSQL, where connections can be cut from outside")
    # Given a consumer working through a stream
    load_example_model()
    stream = new_stream(shards=2)
    envelopes = order_events(count=3_000, seed=10)
    publish(kinesis, stream, envelopes)
    consumer = start_consumer(stream, args=["--batch-size=50"])

    # When its database connections are cut, three times, while it stores batches
    for stored in (300, 900, 1_500):
        wait_for(_stored(stored), timeout=60, message=f"{stored} events stored")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    # Then it goes on from its checkpoints: every event stored once
    wait_for(_stored(_distinct(envelopes)), timeout=60, message="every event stored")
    assert consumer.terminate() == 0
    assert inbox_counts() == (_distinct(envelopes), len(envelopes) - _distinct(envelopes))
    assert consumer.events("database_unavailable")
