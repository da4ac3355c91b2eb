"""The naive design the Kinesis benchmark compares against; benchmark only, not part of the product.

One Celery task per Kinesis record, and each task stores and applies its one event: parse the
envelope, reserve the instance row, lock it, insert the event, run the engine over the instance's
open events (its own, plus any parked earlier) and save the changed rows with the plain ORM. A
reader process sends one task per record it gets from the stream. This is the design a first
implementation would have; the product instead stores a whole batch of records in one transaction
and sends one task per few hundred instances.

Workers load the task with ``celery -A statustracker worker -I bench.naive_apply -Q bench_naive``
(run from the project directory). The reader runs as
``python -m bench.naive_apply --stream NAME --endpoint-url URL`` and prints one JSON line per
GetRecords call that returned records, with the time the call started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from functools import lru_cache

from celery import shared_task

QUEUE = "bench_naive"
TASK_NAME = "bench.naive_apply.apply_record"


@shared_task(name=TASK_NAME, acks_late=True)
def apply_record(data: str, reference: str) -> str:
    return record_apply(data=data, reference=reference)


@lru_cache(maxsize=64)
def _current_version(model_key: str) -> tuple[int, int] | None:
    """(version id, model id) of a model's current version; cached, as versions do not change here."""
    from models_registry.selectors import current_versions

    version = current_versions(keys=[model_key]).get(model_key)
    return (version.pk, version.model_id) if version else None


def record_apply(*, data: str, reference: str) -> str:
    """Store one record's event and apply it at once, in its own transaction (about ten queries)."""
    from django.db import transaction
    from django.utils import timezone

    from models_registry.handlers import get_handler
    from models_registry.selectors import version_definition
    from tracking.apply import engine
    from tracking.arrival.envelope import EnvelopeError, decode, parse
    from tracking.models import (
        STATUS_BY_KIND,
        DeadLetter,
        EventStatus,
        InboxEvent,
        ProcessInstance,
        SourceKind,
        TransitionRecord,
    )

    raw = data.encode()
    try:
        envelope = parse(decode(raw), default_event_id=reference, size=len(raw))
        current = _current_version(envelope.model_id)
        if current is None:
            raise EnvelopeError("model_id", f"unknown model {envelope.model_id!r}")
    except EnvelopeError as error:
        DeadLetter.objects.create(
            source_kind=SourceKind.KINESIS, source_ref=reference, raw=raw, field=error.field, reason=error.reason
        )
        return "rejected"
    version_pk, model_pk = current
    now = timezone.now()
    with transaction.atomic():
        ProcessInstance.objects.bulk_create(
            [ProcessInstance(model_id=model_pk, transaction_id=envelope.transaction_id)], ignore_conflicts=True
        )
        instance = ProcessInstance.objects.select_for_update().get(
            model_id=model_pk, transaction_id=envelope.transaction_id
        )
        # Under the instance's lock: a copy of the same event waits here, then finds it stored.
        if InboxEvent.objects.filter(event_id=envelope.event_id).exists():
            return "duplicate"
        InboxEvent.objects.create(
            event_id=envelope.event_id,
            model_id=model_pk,
            instance=instance,
            event_type=envelope.event_type,
            occurred_at=envelope.occurred_at or now,
            received_at=now,
            envelope=envelope.as_document(received_at=now),
            source_kind=SourceKind.KINESIS,
            source_ref=reference,
        )
        events = list(
            InboxEvent.objects.filter(instance=instance, status__in=[EventStatus.PENDING, EventStatus.PARKED])
            .only("id", "status", "envelope", "occurred_at", "reason")
            .order_by("id")
        )
        version_id = instance.version_id or version_pk
        definition = version_definition(version_id=version_id)
        result = engine.run(
            definition=definition,
            handler=get_handler(definition.document["handler"]),
            state=instance.state,
            context=instance.context,
            events=[engine.OpenEvent(e.pk, e.envelope, e.status == EventStatus.PARKED) for e in events],
        )
        by_key = {e.pk: e for e in events}
        for key, (status, reason) in result.outcomes.items():
            event = by_key[key]
            if event.status == status == EventStatus.PARKED:
                continue
            event.status, event.reason, event.processed_at = status, reason[:500], now
            event.save(update_fields=["status", "reason", "processed_at"])
        if result.changed:
            for step in result.steps:
                event_envelope = by_key[step.event_key].envelope
                if not step.from_state:
                    instance.start(
                        version_id=version_id, initial_state=step.to_state, event_type=event_envelope["event_type"]
                    )
                    instance.started_at = now
                else:
                    instance.apply_event(
                        target=step.to_state, event=event_envelope, handler=definition.document["handler"]
                    )
                TransitionRecord.objects.create(
                    instance=instance,
                    event_id=step.event_key,
                    from_state=step.from_state,
                    to_state=step.to_state,
                    occurred_at=by_key[step.event_key].occurred_at,
                )
            instance.context = result.context
            instance.status = STATUS_BY_KIND[definition.kinds[instance.state]]
            instance.state_entered_at = instance.updated_at = now
            instance.save(
                update_fields=["version", "state", "status", "context", "started_at", "state_entered_at", "updated_at"]
            )
    return "stored"


def read_stream(*, stream: str, endpoint_url: str, batch_size: int, stop: threading.Event) -> None:
    """Read every shard from its start and send one task per record, until stopped."""
    from statustracker.celery import app
    from tracking.arrival.kinesis.emulator import local_client

    client = local_client(endpoint_url)
    shards = [s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]]
    iterators = {
        shard: client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        for shard in shards
    }
    last_call = dict.fromkeys(shards, 0.0)
    while not stop.is_set():
        got = 0
        for shard in shards:
            # The same limit as the product's consumer: at most 5 GetRecords calls per second per shard.
            wait = last_call[shard] + 0.2 - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            last_call[shard] = time.monotonic()
            started = time.time()
            response = client.get_records(ShardIterator=iterators[shard], Limit=batch_size)
            iterators[shard] = response["NextShardIterator"]
            for record in response["Records"]:
                app.send_task(
                    TASK_NAME,
                    args=[record["Data"].decode(), f"{stream}/{shard}/{record['SequenceNumber']}"],
                    queue=QUEUE,
                )
            if response["Records"]:
                got += len(response["Records"])
                print(
                    json.dumps({"event": "read", "started": started, "records": len(response["Records"])}), flush=True
                )  # noqa: T201
        if not got:
            stop.wait(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description="Read a stream and send one naive apply task per record.")
    parser.add_argument("--stream", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")
    import django

    django.setup()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    read_stream(stream=args.stream, endpoint_url=args.endpoint_url, batch_size=args.batch_size, stop=stop)
    sys.exit(0)


if __name__ == "__main__":
    main()
