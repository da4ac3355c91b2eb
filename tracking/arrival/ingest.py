"""The one way into the inbox: store accepted events once, dead-letter the rest, enqueue the work.

The REST API, ``ingest_events`` and the Kinesis consumer all hand their input to ``events_ingest``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from models_registry.selectors import current_versions
from tracking.arrival.envelope import Envelope, EnvelopeError, decode, parse
from tracking.bulk import bulk_insert, text_in
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import DeadLetter, InboxEvent, ProcessInstance

logger = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a deadlock, and how often a batch is tried when it meets one.
DEADLOCK_DETECTED = "40P01"
DEADLOCK_ATTEMPTS = 3

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class RawEvent:
    """One item of input: raw bytes (a file line, a Kinesis record) or an already decoded value."""

    payload: bytes | object
    source_ref: str = ""
    default_event_id: str | None = None


@dataclass(frozen=True)
class IngestResult:
    status: str
    event_id: str | None = None
    field: str = ""
    reason: str = ""


def _raw_bytes(payload: bytes | object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False).encode()
    except (TypeError, ValueError, RecursionError):
        return repr(payload).encode()


def _parse(item: RawEvent) -> Envelope:
    if isinstance(item.payload, bytes):
        return parse(decode(item.payload), default_event_id=item.default_event_id, size=len(item.payload))
    return parse(item.payload, default_event_id=item.default_event_id)


def events_ingest(*, items: Sequence[RawEvent], source_kind: str) -> list[IngestResult]:
    """Store accepted events in the inbox and dead-letter the rest, then enqueue the work.

    Runs in one database transaction; called inside an outer one (the Kinesis consumer writes its
    checkpoint in the same transaction), the work is enqueued when the outer one commits.
    Returns one result per item, in order.
    """
    now = timezone.now()
    results: list[IngestResult | None] = [None] * len(items)
    envelopes: dict[int, Envelope] = {}
    dead: list[DeadLetter] = []

    def reject(index: int, error: EnvelopeError, event_id: str | None = None) -> None:
        results[index] = IngestResult(REJECTED, event_id=event_id, field=error.field, reason=error.reason)
        dead.append(
            DeadLetter(
                source_kind=source_kind,
                source_ref=items[index].source_ref[:500],
                raw=_raw_bytes(items[index].payload),
                field=error.field,
                reason=error.reason[:1000],
            )
        )

    for index, item in enumerate(items):
        try:
            envelopes[index] = _parse(item)
        except EnvelopeError as error:
            reject(index, error)

    versions = current_versions(keys={e.model_id for e in envelopes.values()})
    seen_in_batch: set[str] = set()
    for index, envelope in list(envelopes.items()):
        if envelope.model_id not in versions:
            del envelopes[index]
            reject(
                index, EnvelopeError(envelope.model_field, f"unknown model {envelope.model_id!r}"), envelope.event_id
            )
        elif envelope.event_id in seen_in_batch:
            del envelopes[index]
            results[index] = IngestResult(DUPLICATE, event_id=envelope.event_id)
        else:
            seen_in_batch.add(envelope.event_id)

    in_batch_duplicates = Counter(r.event_id for r in results if r is not None and r.status == DUPLICATE)
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _store(
                    envelopes,
                    versions,
                    items,
                    results,
                    dead,
                    Counter(in_batch_duplicates),
                    now=now,
                    source_kind=source_kind,
                )
            break
        except OperationalError as error:
            # Two producers storing the same event ids in different orders can deadlock on the
            # unique index; the database aborts one of them, which simply tries again.
            if attempt == DEADLOCK_ATTEMPTS or getattr(error.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
            logger.warning("ingestion deadlocked with a concurrent producer; trying again (%d)", attempt)
    return results  # type: ignore[return-value]


def _store(envelopes, versions, items, results, dead, duplicates: Counter, *, now, source_kind: str) -> None:
    """One try at writing a batch: dead letters, instance rows, inbox rows, duplicate counts."""
    DeadLetter.objects.bulk_create(dead)
    instance_ids, created = _reserve_instances(envelopes.values(), versions)
    # The unique constraint alone decides what is new: the insert returns the ids it stored,
    # and an id it skipped (seen before, or stored by a concurrent producer a moment ago) is a
    # duplicate.
    stored = set(
        bulk_insert(
            InboxEvent,
            [
                {
                    "event_id": envelope.event_id,
                    "model_id": versions[envelope.model_id].model_id,
                    "instance_id": instance_ids[(envelope.model_id, envelope.transaction_id)],
                    "event_type": envelope.event_type,
                    "occurred_at": envelope.occurred_at or now,
                    "received_at": now,
                    "envelope": envelope.as_document(received_at=now),
                    "source_kind": source_kind,
                    "source_ref": items[index].source_ref[:500],
                }
                for index, envelope in envelopes.items()
            ],
            ignore_conflicts=True,
            returning="event_id",
        )
    )
    queues = {}
    for index, envelope in envelopes.items():
        instance_id = instance_ids[(envelope.model_id, envelope.transaction_id)]
        if envelope.event_id in stored:
            results[index] = IngestResult(ACCEPTED, event_id=envelope.event_id)
            queues[instance_id] = versions[envelope.model_id].model.queue
        else:
            results[index] = IngestResult(DUPLICATE, event_id=envelope.event_id)
            duplicates[envelope.event_id] += 1
    # An instance row reserved here for duplicates only (an id reused for another transaction)
    # would wait for ever with no event: it goes again. Nobody else can see it before this commits.
    unused = created - set(queues)
    if unused:
        ProcessInstance.objects.filter(pk__in=unused).delete()
    _count_duplicates(duplicates)
    if queues:
        transaction.on_commit(lambda: enqueue_instances(queues))


def _count_duplicates(counts: Counter) -> None:
    by_count: dict[int, list[str]] = defaultdict(list)
    for event_id, count in counts.items():
        by_count[count].append(event_id)
    for count, event_ids in by_count.items():
        InboxEvent.objects.filter(event_id__in=event_ids).update(duplicate_count=F("duplicate_count") + count)


def _reserve_instances(envelopes: Iterable[Envelope], versions: dict) -> tuple[dict[tuple[str, str], int], set[int]]:
    """Make sure an instance row exists for every (model, transaction); returns their ids by
    (model, transaction), and the ids of the rows this call created."""
    wanted = {(e.model_id, e.transaction_id) for e in envelopes}
    if not wanted:
        return {}, set()
    created = bulk_insert(
        ProcessInstance,
        # Sorted: concurrent ingesters wait on each other's new rows in one order, so never deadlock.
        [{"model_id": versions[m].model_id, "transaction_id": t} for m, t in sorted(wanted)],
        ignore_conflicts=True,
        returning="id",
    )
    model_keys = {versions[m].model_id: m for m, _ in wanted}
    rows = ProcessInstance.objects.filter(
        model_id__in=list(model_keys), transaction_id__in=text_in({t for _, t in wanted})
    ).values_list("id", "model_id", "transaction_id")
    found = {(model_keys[model_id], txn): pk for pk, model_id, txn in rows}
    return {key: found[key] for key in wanted}, set(created)
