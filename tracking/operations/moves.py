"""Transitions no event caused: an operator's manual move and a migration to another model version.

Both are recorded in the history with who and why, and retry the instance's parked events.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from models_registry.selectors import version_definition
from tracking.apply.applier import ApplyBatch, instances_held, open_events
from tracking.apply.locks import instances_for_update
from tracking.models import EventStatus, ProcessInstance, TransitionRecord


def _move(instance: ProcessInstance, *, target: str, version_id: int, actor, note: str, now) -> None:
    """A transition that no event caused: recorded with who and why; parked events retried.

    A move within the instance's version is a manual move, a move to another version a
    migration: two django-fsm transitions, each checked against its own rules.
    """
    from_state = instance.state
    if version_id == instance.version_id:
        instance.move_manually(target=target)
    else:
        instance.migrate(version_id=version_id, target=target)
    instance.state_entered_at = now
    TransitionRecord.objects.create(
        instance=instance, from_state=from_state, to_state=target, occurred_at=now, actor=actor, note=note[:500]
    )
    # A held instance's pending events wait for the failed one to be retried or skipped.
    statuses = (EventStatus.PARKED,) if instances_held([instance.pk]) else (EventStatus.PENDING, EventStatus.PARKED)
    events = open_events([instance.pk], statuses=statuses).get(instance.pk, [])
    batch = ApplyBatch(now)
    batch.run(instance, events, version_id=version_id, state_changed=True)
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
