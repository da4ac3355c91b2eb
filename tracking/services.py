"""Everything that writes events and instances: ingestion, applying events, expiry, the sweep."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from models_registry.handlers import get_handler
from models_registry.models import StatusModel
from models_registry.selectors import current_versions, version_definition
from tracking import engine
from tracking.bulk import bulk_insert, bulk_set, text_in
from tracking.envelope import Envelope, EnvelopeError, decode, parse
from tracking.locks import instances_for_update
from tracking.models import (
    STATUS_BY_KIND,
    DeadLetter,
    EventStatus,
    InboxEvent,
    InstanceStatus,
    ProcessInstance,
    TransitionRecord,
)

logger = logging.getLogger(__name__)

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
    import json

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

    with transaction.atomic():
        DeadLetter.objects.bulk_create(dead)
        duplicates_in_batch = Counter(r.event_id for r in results if r is not None and r.status == DUPLICATE)
        existing = set(
            InboxEvent.objects.filter(event_id__in=text_in(e.event_id for e in envelopes.values())).values_list(
                "event_id", flat=True
            )
        )
        for index, envelope in list(envelopes.items()):
            if envelope.event_id in existing:
                del envelopes[index]
                results[index] = IngestResult(DUPLICATE, event_id=envelope.event_id)
                duplicates_in_batch[envelope.event_id] += 1

        instance_ids = _reserve_instances(envelopes.values(), versions)
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
            # A concurrent producer may have stored the same event id since the look-up above;
            # the unique constraint keeps it once.
            ignore_conflicts=True,
        )
        _count_duplicates(duplicates_in_batch)
        for index, envelope in envelopes.items():
            results[index] = IngestResult(ACCEPTED, event_id=envelope.event_id)
        queues = {
            instance_ids[(e.model_id, e.transaction_id)]: versions[e.model_id].model.queue for e in envelopes.values()
        }
        transaction.on_commit(lambda: enqueue_instances(queues))
    return results  # type: ignore[return-value]


def _count_duplicates(counts: Counter) -> None:
    by_count: dict[int, list[str]] = defaultdict(list)
    for event_id, count in counts.items():
        by_count[count].append(event_id)
    for count, event_ids in by_count.items():
        InboxEvent.objects.filter(event_id__in=event_ids).update(duplicate_count=F("duplicate_count") + count)


def _reserve_instances(envelopes: Iterable[Envelope], versions: dict) -> dict[tuple[str, str], int]:
    """Make sure an instance row exists for every (model, transaction) and return their ids."""
    wanted = {(e.model_id, e.transaction_id) for e in envelopes}
    if not wanted:
        return {}
    bulk_insert(
        ProcessInstance,
        # Sorted: concurrent ingesters wait on each other's new rows in one order, so never deadlock.
        [{"model_id": versions[m].model_id, "transaction_id": t} for m, t in sorted(wanted)],
        ignore_conflicts=True,
    )
    model_keys = {versions[m].model_id: m for m, _ in wanted}
    rows = ProcessInstance.objects.filter(
        model_id__in=list(model_keys), transaction_id__in=text_in({t for _, t in wanted})
    ).values_list("id", "model_id", "transaction_id")
    found = {(model_keys[model_id], txn): pk for pk, model_id, txn in rows}
    return {key: found[key] for key in wanted}


def _chunks(values: list, size: int) -> Iterable[list]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def enqueue_instances(queue_by_instance: dict[int, str]) -> None:
    """Send apply tasks, many instances to a task, each model's work to its own queue."""
    from tracking.tasks import apply_pending

    by_queue: dict[str, list[int]] = defaultdict(list)
    for instance_id, queue in queue_by_instance.items():
        by_queue[queue or settings.CELERY_TASK_DEFAULT_QUEUE].append(instance_id)
    for queue, instance_ids in by_queue.items():
        for chunk in _chunks(sorted(instance_ids), settings.STATUSTRACKER_TASK_BATCH_SIZE):
            apply_pending.apply_async(args=[chunk], queue=queue)


def instances_apply_pending(*, instance_ids: Sequence[int]) -> int:
    """Apply the open events of these instances, in arrival order, under their row locks.

    Safe to run any number of times and concurrently: an event leaves the pending state in the
    same transaction that applies it, and a second run waits for the lock, then finds nothing.
    Returns the number of events decided.
    """
    now = timezone.now()
    with transaction.atomic():
        # The model row is not joined in: it is needed only for instances that have not started,
        # and loading it with every instance cost about a tenth of a worker's time.
        instances = {i.pk: i for i in instances_for_update(instance_ids)}
        if not instances:
            return 0
        open_events = _open_events(instances)
        # Only events that are new since the last run can change anything: parked events alone
        # are retried after a transition, not on every run.
        todo = {
            pk: events for pk, events in open_events.items() if any(e.status == EventStatus.PENDING for e in events)
        }
        if not todo:
            return 0
        waiting_models = {instances[pk].model_id for pk in todo if instances[pk].version_id is None}
        model_keys = (
            dict(StatusModel.objects.filter(pk__in=waiting_models).values_list("pk", "key")) if waiting_models else {}
        )
        latest = current_versions(keys=set(model_keys.values())) if model_keys else {}

        batch = _ApplyBatch(now)
        for pk, events in todo.items():
            instance = instances[pk]
            try:
                version_id = instance.version_id or latest[model_keys[instance.model_id]].pk
                batch.run(instance, events, version_id=version_id)
            except Exception:
                # A handler that fails (a bug in a business's own handler, a handler this worker
                # does not have) must not hold up the other instances of the task. The engine
                # raises before anything is recorded, so this instance's events stay pending and
                # the sweep offers them again.
                logger.exception("could not apply the events of instance %s (%s); they stay pending", pk, instance)
        batch.save()
    return len(batch.events)


class _ApplyBatch:
    """Runs the engine over locked instances and writes all changes back in a few bulk queries."""

    def __init__(self, now):
        self.now = now
        self.events: list[InboxEvent] = []
        self.instances: list[ProcessInstance] = []
        self.history: list[dict] = []  # TransitionRecord rows

    def run(self, instance: ProcessInstance, events: list[InboxEvent], *, version_id: int, state_changed=False):
        definition = version_definition(version_id=version_id)
        by_key = {e.pk: e for e in events}
        result = engine.run(
            definition=definition,
            handler=get_handler(definition.document["handler"]),
            state=instance.state,
            context=instance.context,
            events=[engine.OpenEvent(e.pk, e.envelope, e.status == EventStatus.PARKED) for e in events],
            state_changed=state_changed,
        )
        for key, (status, reason) in result.outcomes.items():
            event = by_key[key]
            if event.status == status == EventStatus.PARKED:
                continue
            event.status, event.reason, event.processed_at = status, reason[:500], self.now
            self.events.append(event)
        if result.changed or state_changed:
            for step in result.steps:
                if not step.from_state:
                    instance.version_id = version_id
                    instance.start(initial_state=step.to_state)
                    instance.started_at = self.now
                else:
                    instance.move_to(target=step.to_state)
                self.history.append(
                    {
                        "instance_id": instance.pk,
                        "event_id": step.event_key,
                        "from_state": step.from_state,
                        "to_state": step.to_state,
                        "occurred_at": by_key[step.event_key].occurred_at,
                    }
                )
            instance.context = result.context
            instance.status = STATUS_BY_KIND[definition.kinds[instance.state]]
            if result.changed:
                instance.state_entered_at = self.now
            instance.updated_at = self.now
            self.instances.append(instance)

    def save(self) -> None:
        bulk_set(self.events, ["status", "reason", "processed_at"])
        bulk_set(
            self.instances, ["version", "state", "status", "context", "started_at", "state_entered_at", "updated_at"]
        )
        bulk_insert(TransitionRecord, self.history)


def _open_events(instance_ids) -> dict[int, list[InboxEvent]]:
    open_events: dict[int, list[InboxEvent]] = defaultdict(list)
    for event in (
        InboxEvent.objects.filter(
            instance_id__in=list(instance_ids), status__in=[EventStatus.PENDING, EventStatus.PARKED]
        )
        .only("id", "instance_id", "status", "envelope", "occurred_at", "reason")
        .order_by("id")
    ):
        open_events[event.instance_id].append(event)
    return open_events


def _move(instance: ProcessInstance, *, target: str, version_id: int, actor, note: str, now) -> None:
    """A transition that no event caused: recorded with who and why; parked events retried."""
    from_state = instance.state
    instance.version_id = version_id
    instance.move_to(target=target)
    instance.state_entered_at = now
    TransitionRecord.objects.create(
        instance=instance, from_state=from_state, to_state=target, occurred_at=now, actor=actor, note=note[:500]
    )
    batch = _ApplyBatch(now)
    batch.run(instance, _open_events([instance.pk]).get(instance.pk, []), version_id=version_id, state_changed=True)
    batch.save()


@transaction.atomic
def instance_move_manually(*, instance_id: int, target: str, actor, note: str) -> ProcessInstance:
    """An operator moves an instance to another state of its version (from the admin)."""
    instance = instances_for_update([instance_id]).get()
    if instance.version_id is None:
        raise ValueError("the instance has not started yet")
    definition = version_definition(version_id=instance.version_id)
    if target not in definition.kinds:
        raise ValueError(f"unknown state {target!r}")
    _move(instance, target=target, version_id=instance.version_id, actor=actor, note=note, now=timezone.now())
    return instance


@transaction.atomic
def instances_migrate_version(
    *, instance_ids: Sequence[int], version, state_mapping: dict[str, str], actor=None
) -> int:
    """Move in-flight instances to another version of their model, mapping states that it lacks.

    Every state of a migrated instance must exist in the target version, directly or through
    ``state_mapping``; otherwise nothing is migrated. Each move is recorded in the history.
    """
    definition = version_definition(version_id=version.pk)
    instances = [
        i
        for i in instances_for_update(instance_ids).select_related("version")
        if i.version_id and i.version_id != version.pk
    ]
    if any(i.model_id != version.model_id for i in instances):
        raise ValueError("instances of another model cannot move to this version")
    missing = {i.state for i in instances if state_mapping.get(i.state, i.state) not in definition.kinds}
    if missing:
        raise ValueError(f"no state in version {version.number} for: {', '.join(sorted(missing))}")
    now = timezone.now()
    for instance in instances:
        target = state_mapping.get(instance.state, instance.state)
        note = f"migrated from version {instance.version.number} to {version.number}"
        _move(instance, target=target, version_id=version.pk, actor=actor, note=note, now=now)
    return len(instances)


def token_create(*, name: str, user, can_produce: bool, can_read: bool):
    """A new API token; returns (token, key). Only the key's hash is stored."""
    from tracking.models import ApiToken, hash_token

    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        name=name, user=user, key_hash=hash_token(key), prefix=key[:8], can_produce=can_produce, can_read=can_read
    )
    return token, key


@transaction.atomic
def instance_tracking_link_renew(*, instance_id: int) -> str:
    """Revoke every customer link of an instance by giving it a new link nonce; returns the nonce.

    A plain UPDATE: the instance's ``updated_at`` (what the customer sees as "last updated") and
    its state are left alone.
    """
    from tracking.models import new_link_nonce

    nonce = new_link_nonce()
    if not ProcessInstance.objects.filter(pk=instance_id).update(link_nonce=nonce):
        raise ProcessInstance.DoesNotExist(f"no instance {instance_id}")
    return nonce


def events_expire_parked() -> int:
    """Parked events older than their model version's ``park_ttl`` become expired."""
    from models_registry.models import ModelVersion

    now = timezone.now()
    expired = 0
    parked = InboxEvent.objects.filter(status=EventStatus.PARKED)
    for version in ModelVersion.objects.filter(pk__in=parked.values("instance__version")).only("id", "document"):
        cutoff = now - version_definition(version_id=version.pk).park_ttl
        expired += parked.filter(instance__version_id=version.pk, received_at__lt=cutoff).update(
            status=EventStatus.EXPIRED, processed_at=now, reason="still parked after park_ttl"
        )
    # Events waiting for a start event that never came: the model's current version decides.
    waiting = parked.filter(instance__version__isnull=True)
    keys = set(waiting.values_list("instance__model__key", flat=True).distinct())
    for key, version in current_versions(keys=keys).items():
        cutoff = now - version_definition(version_id=version.pk).park_ttl
        expired += waiting.filter(instance__model__key=key, received_at__lt=cutoff).update(
            status=EventStatus.EXPIRED, processed_at=now, reason="no instance was started within park_ttl"
        )
    return expired


def pending_sweep(*, older_than: timedelta | None = None) -> int:
    """Enqueue again the instances whose pending events have waited too long (a task was lost)."""
    if older_than is None:
        older_than = timedelta(seconds=settings.STATUSTRACKER_SWEEP_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    rows = (
        InboxEvent.objects.filter(status=EventStatus.PENDING, received_at__lt=cutoff)
        .values_list("instance_id", "model__queue")
        .distinct()
    )
    queues = dict(rows)
    if queues:
        logger.warning("sweep: re-enqueueing %d instances with pending events older than %s", len(queues), older_than)
        enqueue_instances(queues)
    return len(queues)


__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "REJECTED",
    "InstanceStatus",
    "RawEvent",
    "events_expire_parked",
    "events_ingest",
    "instances_apply_pending",
    "pending_sweep",
]
