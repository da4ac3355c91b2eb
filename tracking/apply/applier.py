"""Apply the open events of locked instances with the engine and write the results back in bulk."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from models_registry.handlers import get_handler
from models_registry.models import StatusModel
from models_registry.selectors import current_versions, version_definition
from tracking.apply import engine
from tracking.apply.locks import instances_for_update
from tracking.bulk import bulk_insert, bulk_set
from tracking.models import STATUS_BY_KIND, EventStatus, InboxEvent, ProcessInstance, TransitionRecord

logger = logging.getLogger(__name__)


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
        open_by_instance = open_events(instances)
        # Only events that are new since the last run can change anything: parked events alone
        # are retried after a transition, not on every run.
        todo = {
            pk: events
            for pk, events in open_by_instance.items()
            if any(e.status == EventStatus.PENDING for e in events)
        }
        if not todo:
            return 0
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
            except Exception:
                # A handler that fails (a bug in a business's own handler, a handler this worker
                # does not have) must not hold up the other instances of the task. The engine
                # raises before anything is recorded, so this instance's events stay pending and
                # the sweep offers them again.
                logger.exception("could not apply the events of instance %s (%s); they stay pending", pk, instance)
        batch.save()
    return len(batch.events)


class ApplyBatch:
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


def open_events(instance_ids) -> dict[int, list[InboxEvent]]:
    """Pending and parked events of these instances, in arrival order, by instance."""
    by_instance: dict[int, list[InboxEvent]] = defaultdict(list)
    for event in (
        InboxEvent.objects.filter(
            instance_id__in=list(instance_ids), status__in=[EventStatus.PENDING, EventStatus.PARKED]
        )
        .only("id", "instance_id", "status", "envelope", "occurred_at", "reason")
        .order_by("id")
    ):
        by_instance[event.instance_id].append(event)
    return by_instance
