"""The one way into the inbox: store accepted events once, dead-letter the rest, enqueue the work.

The REST API, ``ingest_events`` and the Kinesis consumer all hand their input to ``events_ingest``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from models_registry.selectors import current_versions, version_definition
from tracking.arrival.envelope import (
    Envelope,
    EnvelopeError,
    body_differences,
    decode,
    parse,
    sent_event_id,
    stored_envelope,
)
from tracking.bulk import bulk_insert, text_in
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import DeadLetter, InboxEvent, ProcessInstance

logger = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a deadlock, and how often a batch is tried when it meets one.
DEADLOCK_DETECTED = "40P01"
DEADLOCK_ATTEMPTS = 3

ACCEPTED, DUPLICATE, CONFLICT, REJECTED = "accepted", "duplicate", "conflict", "rejected"
OUTCOMES = (ACCEPTED, DUPLICATE, CONFLICT, REJECTED)


@dataclass(frozen=True)
class RawEvent:
    """One item of input: raw bytes (a file line, a Kinesis record) or an already decoded value."""

    payload: bytes | object
    source_ref: str = ""
    default_event_id: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """What became of one item. ``field`` and ``reason`` are the first problem of a rejected item and
    ``errors`` all of them; ``reason`` also says what a conflict differs in; ``warning`` marks an
    accepted event that cannot have an effect."""

    status: str
    event_id: str | None = None
    field: str = ""
    reason: str = ""
    errors: tuple[tuple[str, str], ...] = ()
    warning: str = ""


def _raw_bytes(payload: bytes | object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False).encode()
    except (TypeError, ValueError, RecursionError):
        return repr(payload).encode()


def _decoded(item: RawEvent) -> Any:
    return decode(item.payload) if isinstance(item.payload, bytes) else item.payload


def _sent_model_id(value: Any, error: EnvelopeError) -> tuple[str, str] | None:
    """The model id (and the name of its field) sent with a rejected value, when it is a text the
    checks found nothing wrong with: whether such a model exists is one more thing to report."""
    if not isinstance(value, dict):
        return None
    name = "modelid" if "specversion" in value else "model_id"
    model_id = value.get(name)
    if not isinstance(model_id, str) or any(field == name for field, _ in error.errors):
        return None
    return model_id, name


def _dead_letter_reason(errors: Sequence[tuple[str, str]]) -> str:
    if len(errors) == 1:
        return errors[0][1]
    return "; ".join(f"{field}: {reason}" if field else reason for field, reason in errors)


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
        results[index] = IngestResult(
            REJECTED, event_id=event_id, field=error.field, reason=error.reason, errors=error.errors
        )
        dead.append(_dead_letter(items[index], source_kind, error.field, _dead_letter_reason(error.errors)))

    refused: dict[int, tuple[EnvelopeError, Any]] = {}
    for index, item in enumerate(items):
        value = None
        try:
            value = _decoded(item)
            size = len(item.payload) if isinstance(item.payload, bytes) else None
            envelopes[index] = parse(value, default_event_id=item.default_event_id, size=size)
        except EnvelopeError as error:
            refused[index] = (error, value)

    sent_models = {index: _sent_model_id(value, error) for index, (error, value) in refused.items()}
    versions = current_versions(
        keys={e.model_id for e in envelopes.values()} | {sent[0] for sent in sent_models.values() if sent}
    )
    for index, (error, value) in refused.items():
        sent = sent_models[index]
        if sent and sent[0] not in versions:
            unknown = (sent[1], f"unknown model {sent[0]!r}")
            error = EnvelopeError(error.field, error.reason, errors=[*error.errors, unknown])
        reject(index, error, sent_event_id(value, default_event_id=items[index].default_event_id))

    # Later copies of an id in this batch are decided once the first one is (_store).
    repeats: dict[int, Envelope] = {}
    first_in_batch: dict[str, int] = {}
    for index, envelope in list(envelopes.items()):
        if envelope.model_id not in versions:
            del envelopes[index]
            reject(
                index, EnvelopeError(envelope.model_field, f"unknown model {envelope.model_id!r}"), envelope.event_id
            )
        elif envelope.event_id in first_in_batch:
            repeats[index] = envelopes.pop(index)
        else:
            first_in_batch[envelope.event_id] = index

    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _store(envelopes, repeats, versions, items, results, dead, now=now, source_kind=source_kind)
            break
        except OperationalError as error:
            # Two producers storing the same event ids in different orders can deadlock on the
            # unique index; the database aborts one of them, which simply tries again.
            if attempt == DEADLOCK_ATTEMPTS or getattr(error.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
            logger.warning("ingestion deadlocked with a concurrent producer; trying again (%d)", attempt)
    return results  # type: ignore[return-value]


def _dead_letter(item: RawEvent, source_kind: str, field: str, reason: str) -> DeadLetter:
    return DeadLetter(
        source_kind=source_kind,
        source_ref=item.source_ref[:500],
        raw=_raw_bytes(item.payload),
        field=field,
        reason=reason[:1000],
    )


def _no_effect_warning(version, event_type: str) -> str:
    """Words for an event that no instance of the model's latest version can take: no transition is
    for its type, and it cannot start one. (Any handler's move must be a declared transition.)"""
    definition = version_definition(version_id=version.id)
    if definition.may_start(event_type) or definition.transitions_for(event_type):
        return ""
    return (
        f"no effect: version {version.number} of {version.model.key!r} has no transition for {event_type!r} "
        "and does not start instances with it, so its instances will ignore this event"
    )


def _store(envelopes, repeats, versions, items, results, dead, *, now, source_kind: str) -> None:
    """One try at writing a batch: dead letters, instance rows, inbox rows, duplicates and conflicts."""
    DeadLetter.objects.bulk_create(dead)
    instance_ids, created = _reserve_instances(envelopes.values(), versions)
    # The unique constraint alone decides what is new: the insert returns the ids it stored,
    # and an id it skipped (seen before, or stored by a concurrent producer a moment ago) is a
    # duplicate, or a conflict when its body differs from the stored one.
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
    # Each id's body as stored: this batch's when the insert took it, otherwise the row's (read only
    # when an id was seen before, which a valid event's way never meets).
    bodies = {e.event_id: e for e in envelopes.values() if e.event_id in stored}
    bodies.update(_stored_bodies({e.event_id for e in envelopes.values()} - stored))
    queues = {}
    warnings: dict[tuple[int, str], str] = {}
    duplicates: Counter = Counter()
    conflicts: list[DeadLetter] = []
    for index, envelope in sorted([*envelopes.items(), *repeats.items()]):
        if index in envelopes and envelope.event_id in stored:
            version = versions[envelope.model_id]
            key = (version.id, envelope.event_type)
            if key not in warnings:
                warnings[key] = _no_effect_warning(version, envelope.event_type)
            results[index] = IngestResult(ACCEPTED, event_id=envelope.event_id, warning=warnings[key])
            queues[instance_ids[(envelope.model_id, envelope.transaction_id)]] = version.model.queue
            continue
        body = bodies.get(envelope.event_id)
        differences = body_differences(envelope, body) if body is not None else []
        if not differences:
            results[index] = IngestResult(DUPLICATE, event_id=envelope.event_id)
            duplicates[envelope.event_id] += 1
            continue
        reason = (
            f"event_id {envelope.event_id!r} was stored before with a different body "
            f"(it differs in {', '.join(differences)}); this event is not applied"
        )
        results[index] = IngestResult(CONFLICT, event_id=envelope.event_id, field="event_id", reason=reason)
        conflicts.append(_dead_letter(items[index], source_kind, "event_id", f"conflict: {reason}"))
    DeadLetter.objects.bulk_create(conflicts)
    # An instance row reserved here for duplicates or conflicts only (an id reused for another
    # transaction) would wait for ever with no event: it goes again. Nobody else can see it before
    # this commits.
    unused = created - set(queues)
    if unused:
        ProcessInstance.objects.filter(pk__in=unused).delete()
    _count_duplicates(duplicates)
    if queues:
        transaction.on_commit(lambda: enqueue_instances(queues))


def _stored_bodies(event_ids: set[str]) -> dict[str, Envelope]:
    """The stored envelopes of these ids, as their producers sent them."""
    if not event_ids:
        return {}
    rows = InboxEvent.objects.filter(event_id__in=text_in(event_ids)).values_list(
        "envelope", "occurred_at", "received_at"
    )
    # A missing occurred_at is stored as the time of receipt, to the microsecond; a producer's own
    # time never equals it.
    return {
        document["event_id"]: stored_envelope(document, occurred_at=None if occurred == received else occurred)
        for document, occurred, received in rows
    }


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
