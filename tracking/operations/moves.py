"""Transitions no event caused: an operator's manual move and a migration to another model version.

Both are recorded in the history with who and why, and retry the instance's parked events. A move
or a migration of many instances is all or nothing: one transaction, checked whole before any
instance moves. The plans say beforehand what a migration would do (the admin's dry run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from models_registry.selectors import version_definition
from tracking.apply.applier import ApplyBatch, instances_held, open_events
from tracking.apply.locks import instances_for_update
from tracking.models import EventStatus, InstanceStatus, ProcessInstance, TransitionRecord

IN_FLIGHT = (InstanceStatus.ACTIVE, InstanceStatus.IN_EXCEPTION)


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
def instances_move_manually(*, instance_ids: Iterable[int], target: str, actor, note: str) -> int:
    """An operator moves many instances to one state, all or none; returns how many moved.

    Instances that have not started or are in ``target`` already are left alone; the target must
    be a state of every other instance's version, or nothing moves.
    """
    instances = [i for i in instances_for_update(instance_ids) if i.version_id and i.state != target]
    if any(target not in version_definition(version_id=i.version_id).kinds for i in instances):
        raise ValueError(f"{target!r} is not a state of the version of every instance chosen")
    now = timezone.now()
    for instance in instances:
        _move(instance, target=target, version_id=instance.version_id, actor=actor, note=note, now=now)
    return len(instances)


def move_candidates(instances: QuerySet[ProcessInstance], *, target: str = "") -> QuerySet[ProcessInstance]:
    """Of these instances, those a manual move applies to: started, and not in ``target`` already."""
    return instances.filter(version__isnull=False).exclude(state=target)


def common_states(instances: QuerySet[ProcessInstance]) -> list[str]:
    """The state keys that every started instance's version has, in the first version's order."""
    version_ids = sorted(set(instances.filter(version__isnull=False).values_list("version_id", flat=True)))
    if not version_ids:
        return []
    shared = set.intersection(*(set(version_definition(version_id=pk).kinds) for pk in version_ids))
    return [key for key in version_definition(version_id=version_ids[0]).kinds if key in shared]


def migration_candidates(instances: QuerySet[ProcessInstance], *, version) -> QuerySet[ProcessInstance]:
    """Of these instances, those a migration to ``version`` moves: in flight, on another version."""
    return instances.filter(status__in=IN_FLIGHT, version__isnull=False).exclude(version=version)


@dataclass(frozen=True)
class PlannedMove:
    from_version_id: int
    from_version: int  # the version's number
    from_state: str
    to_state: str
    count: int


@dataclass(frozen=True)
class MigrationPlan:
    """What migrating instances to ``version`` with a state mapping would do, before it is done."""

    version_number: int
    moves: list[PlannedMove]
    missing: list[str]  # states of the instances that the target version lacks and no mapping covers

    @property
    def total(self) -> int:
        return sum(move.count for move in self.moves)

    def landing(self) -> dict[str, int]:
        """How many instances land in each state of the target version (before parked events apply)."""
        counts: Counter[str] = Counter()
        for move in self.moves:
            counts[move.to_state] += move.count
        return dict(counts.most_common())


def instances_migration_plan(
    *, instances: QuerySet[ProcessInstance], version, state_mapping: dict[str, str]
) -> MigrationPlan:
    """The dry run of ``instances_migrate_version`` on the in-flight ones of these instances."""
    kinds = version_definition(version_id=version.pk).kinds
    rows = (
        migration_candidates(instances, version=version)
        .values_list("version_id", "version__number", "state")
        .annotate(n=Count("id"))
        .order_by("version__number", "state")
    )
    moves = [PlannedMove(pk, number, state, state_mapping.get(state, state), n) for pk, number, state, n in rows]
    missing = sorted({move.from_state for move in moves if move.to_state not in kinds})
    return MigrationPlan(version_number=version.number, moves=moves, missing=missing)


@transaction.atomic
def instances_migrate_version(
    *, instance_ids: Sequence[int], version, state_mapping: dict[str, str], actor=None, note: str = ""
) -> int:
    """Move in-flight instances to another version of their model, mapping states that it lacks.

    Every state of a migrated instance must exist in the target version, directly or through
    ``state_mapping``; otherwise nothing is migrated. Each move is recorded in the history, with
    ``note`` after the versions. Finished instances (succeeded, failed) are left alone.
    """
    definition = version_definition(version_id=version.pk)
    instances = [
        i
        for i in instances_for_update(instance_ids).select_related("version")
        if i.version_id and i.version_id != version.pk and i.status in IN_FLIGHT
    ]
    if any(i.model_id != version.model_id for i in instances):
        raise ValueError("instances of another model cannot move to this version")
    missing = {i.state for i in instances if state_mapping.get(i.state, i.state) not in definition.kinds}
    if missing:
        raise ValueError(f"no state in version {version.number} for: {', '.join(sorted(missing))}")
    now = timezone.now()
    for instance in instances:
        target = state_mapping.get(instance.state, instance.state)
        recorded = f"migrated from version {instance.version.number} to {version.number}" + (
            f": {note}" if note else ""
        )
        _move(instance, target=target, version_id=version.pk, actor=actor, note=recorded, now=now)
    return len(instances)
