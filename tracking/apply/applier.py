"""Apply the open events of locked instances with the engine and write the results back in bulk."""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from models_registry.handlers import get_handler
from models_registry.models import StatusModel
from models_registry.selectors import current_versions, version_definition
from tracking.apply import engine
from tracking.apply.locks import instances_for_update
from tracking.bulk import bulk_insert, bulk_set
from tracking.models import STATUS_BY_KIND, EventStatus, InboxEvent, ProcessInstance, TransitionRecord
from tracking.notify.outbox import AppliedSteps, outbox_write

logger = logging.getLogger(__name__)

# The instance fields the apply reads, in the model's field order (``Model.from_db`` wants it);
# ``created_at`` and ``link_nonce`` are left unloaded, ``updated_at`` is only set.
APPLY_INSTANCE_FIELDS = (
    "id",
    "model_id",
    "version_id",
    "transaction_id",
    "state",
    "status",
    "context",
    "started_at",
    "state_entered_at",
)


def instances_locked_for_apply(instance_ids: Sequence[int]) -> dict[int, ProcessInstance]:
    """Lock these instances and load them for the apply, by id.

    The rows come as values, the context as text that orjson decodes, and become instances
    through ``Model.from_db``: the ORM's own loading of full objects was a large share of a
    worker's time.
    """
    context_at = APPLY_INSTANCE_FIELDS.index("context")
    columns = [*APPLY_INSTANCE_FIELDS]
    columns[context_at] = Cast("context", TextField())
    instances = {}
    for row in instances_for_update(instance_ids).values_list(*columns):
        values = list(row)
        values[context_at] = orjson.loads(values[context_at])
        instances[row[0]] = ProcessInstance.from_db(connection.alias, APPLY_INSTANCE_FIELDS, values)
    return instances


@dataclass
class ApplyReport:
    """What a run decided: how many events, and the instances that could not be applied (with why)."""

    decided: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def instances_apply_pending(*, instance_ids: Sequence[int], first_pending_only: bool = False) -> ApplyReport:
    """Apply the open events of these instances, in arrival order, under their row locks.

    Safe to run any number of times and concurrently: an event leaves the pending state in the
    same transaction that applies it, and a second run waits for the lock, then finds nothing.
    An instance whose handler or transition fails is left out (its events stay pending) and
    reported in ``failed``; the others are written. An instance with a failed event is held: its
    later events wait for an operator to retry or skip that one (docs/decisions.md).
    ``first_pending_only`` offers only each instance's oldest pending event, to find the one
    that fails (``tracking.apply.failures``).
    """
    now = timezone.now()
    report = ApplyReport()
    with transaction.atomic():
        # The model row is not joined in: it is needed only for instances that have not started,
        # and loading it with every instance cost about a tenth of a worker's time.
        instances = instances_locked_for_apply(instance_ids)
        if not instances:
            return report
        # A held instance's rows are not even read: its failed event may be a row that cannot be.
        by_instance = open_events(instances, first_pending_only=first_pending_only, skip_held=True)
        # Only events that are new since the last run can change anything: parked events alone
        # are retried after a transition, not on every run.
        todo = {
            pk: events for pk, events in by_instance.items() if any(e.status == EventStatus.PENDING for e in events)
        }
        if not todo:
            return report
        waiting_models = {instances[pk].model_id for pk in todo if instances[pk].version_id is None}
        model_keys = (
            dict(StatusModel.objects.filter(pk__in=waiting_models).values_list("pk", "key")) if waiting_models else {}
        )
        latest = current_versions(keys=set(model_keys.values())) if model_keys else {}

        batch = ApplyBatch(now)
        for pk, events in todo.items():
            instance = instances[pk]
            try:
                version_id = instance.version_id or latest[model_keys[instance.model_id]].pk
                batch.run(instance, events, version_id=version_id)
            except Exception as exc:
                # Whatever fails for one instance (a bug in a business's own handler, a move its
                # definition does not allow, a handler this worker does not have) must not hold
                # up the others: nothing of it is recorded, and the task retries it alone.
                logger.warning("could not apply the events of instance %s (%s): %s", pk, instance, exc)
                report.failed[pk] = describe_error(exc)
        batch.save()
    report.decided = len(batch.events)
    return report


class ApplyBatch:
    """Runs the engine over locked instances and writes all changes back in a few bulk queries."""

    def __init__(self, now):
        self.now = now
        self.events: list[OpenRow] = []
        self.instances: list[ProcessInstance] = []
        self.history: list[dict] = []  # TransitionRecord rows
        self.applied: list[AppliedSteps] = []  # what the outbox tells subscribers

    def run(self, instance: ProcessInstance, events: list[OpenRow], *, version_id: int, state_changed=False):
        """Decide one instance's events; nothing is added to the batch unless all of it succeeds."""
        definition = version_definition(version_id=version_id)
        handler_name = definition.document["handler"]
        by_key = {e.pk: e for e in events}
        result = engine.run(
            definition=definition,
            handler=get_handler(handler_name),
            state=instance.state,
            context=instance.context,
            events=[engine.OpenEvent(e.pk, e.envelope, e.status == EventStatus.PARKED) for e in events],
            state_changed=state_changed,
        )
        history = []
        context_before = instance.context
        if result.changed or state_changed:
            for step in result.steps:
                envelope = by_key[step.event_key].envelope
                if not step.from_state:
                    instance.start(
                        version_id=version_id, initial_state=step.to_state, event_type=envelope["event_type"]
                    )
                    instance.started_at = self.now
                else:
                    instance.apply_event(target=step.to_state, event=envelope, handler=handler_name)
                history.append(
                    {
                        "instance_id": instance.pk,
                        "event_id": step.event_key,
                        "from_state": step.from_state,
                        "to_state": step.to_state,
                        "occurred_at": by_key[step.event_key].occurred_at,
                        "context_updates": step.context_updates,
                    }
                )
            instance.context = result.context
            instance.status = STATUS_BY_KIND[definition.kinds[instance.state]]
            if result.changed:
                instance.state_entered_at = self.now
            instance.updated_at = self.now
            self.instances.append(instance)
            if result.steps:
                self.applied.append(
                    AppliedSteps(
                        instance=instance,
                        version_id=instance.version_id,
                        context_before=context_before,
                        steps=result.steps,
                        events=by_key,
                    )
                )
        for key, (status, reason) in result.outcomes.items():
            event = by_key[key]
            if event.status == status == EventStatus.PARKED:
                continue
            event.status, event.reason, event.processed_at = status, reason[:500], self.now
            self.events.append(event)
        self.history.extend(history)

    def save(self) -> None:
        # The bulk write stores only states that came out of a django-fsm transition.
        for instance in self.instances:
            instance.bulk_write_check()
        bulk_set(self.events, ["status", "reason", "processed_at"], model=InboxEvent)
        bulk_set(
            self.instances, ["version", "state", "status", "context", "started_at", "state_entered_at", "updated_at"]
        )
        bulk_insert(TransitionRecord, self.history)
        outbox_write(self.applied, now=self.now)


def instances_held(instance_ids) -> set[int]:
    """Those of these instances that have a failed event (a partial index keeps this cheap)."""
    failed = InboxEvent.objects.filter(instance_id__in=list(instance_ids), status=EventStatus.FAILED)
    return set(failed.values_list("instance_id", flat=True))


@dataclass(slots=True)
class OpenRow:
    """An open inbox event as the apply reads and writes it back: a plain row, since building
    ``InboxEvent`` objects for every row was a large share of a worker's time."""

    pk: int
    instance_id: int
    status: str
    envelope: dict
    occurred_at: datetime.datetime
    reason: str
    processed_at: datetime.datetime | None = None


def open_events(
    instance_ids,
    *,
    first_pending_only: bool = False,
    skip_held: bool = False,
    statuses=(EventStatus.PENDING, EventStatus.PARKED),
) -> dict[int, list[OpenRow]]:
    """Pending and parked events of these instances (or those of ``statuses``), in arrival order,
    by instance.

    With ``first_pending_only``, of the pending events only each instance's oldest: the others
    are not even read, so that a row that cannot be read is found by itself. With ``skip_held``,
    held instances (``instances_held``) are left out in the same statement.
    """
    instance_ids = list(instance_ids)
    open_rows = InboxEvent.objects.filter(instance_id__in=instance_ids, status__in=list(statuses))
    if skip_held:
        held = InboxEvent.objects.filter(instance_id__in=instance_ids, status=EventStatus.FAILED)
        open_rows = open_rows.exclude(instance_id__in=held.values("instance_id"))
    if first_pending_only:
        wanted, seen = [], set()
        for pk, instance_id, status in open_rows.order_by("id").values_list("id", "instance_id", "status"):
            if status == EventStatus.PENDING:
                if instance_id in seen:
                    continue
                seen.add(instance_id)
            wanted.append(pk)
        open_rows = InboxEvent.objects.filter(pk__in=wanted)
    # The envelope comes as text and orjson decodes it, faster than the JSON field would.
    rows = open_rows.order_by("id").values_list(
        "id", "instance_id", "status", Cast("envelope", TextField()), "occurred_at", "reason"
    )
    by_instance: dict[int, list[OpenRow]] = defaultdict(list)
    for pk, instance_id, status, envelope, occurred_at, reason in rows:
        by_instance[instance_id].append(OpenRow(pk, instance_id, status, orjson.loads(envelope), occurred_at, reason))
    return by_instance
