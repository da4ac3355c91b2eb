"""Shard leases: take, renew, hand over, release, checkpoint, finish; and the fair-share plan.

Every change is one conditional UPDATE that names the lease counter the worker last saw, so of two
workers racing for a lease exactly one wins, and a worker whose lease was taken over can neither
renew nor checkpoint it (its UPDATE matches no row). Expiry uses the database clock (``Now()``),
so workers on several machines need no synchronised clocks; each worker also keeps a local
deadline, a little earlier than the database's, after which it stops reading a shard whose lease
it could not renew.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import BooleanField, Case, DateTimeField, DurationField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now

from tracking.models import ShardLease

SHARD_END = "SHARD_END"


class LeaseLost(Exception):
    """The worker no longer holds the lease: another worker took it, or it expired and was taken."""


@dataclass
class HeldLease:
    """What a worker knows about a lease it holds."""

    lease_id: int
    stream: str
    shard_id: str
    counter: int
    checkpoint_sequence: str
    checkpoint_sub_sequence: int
    parent_shard_ids: list[str]
    deadline: float  # time.monotonic() after which the lease must be treated as gone
    has_parent_leases: bool = False

    @property
    def checkpoint(self) -> tuple[int, int] | None:
        if not self.checkpoint_sequence or self.checkpoint_sequence == SHARD_END:
            return None
        return int(self.checkpoint_sequence), self.checkpoint_sub_sequence


@dataclass(frozen=True)
class LeaseView:
    """A lease as the balancing step sees it."""

    lease_id: int
    shard_id: str
    owner: str
    pending_owner: str
    counter: int
    expired: bool
    finished: bool
    parent_shard_ids: tuple[str, ...] = ()

    @property
    def live_owner(self) -> str:
        return "" if self.expired else self.owner


@dataclass
class Plan:
    take: list[LeaseView] = field(default_factory=list)
    request: list[LeaseView] = field(default_factory=list)


def _expiry(duration: timedelta):
    return ExpressionWrapper(Now() + Value(duration, output_field=DurationField()), output_field=DateTimeField())


def _local_deadline(started: float, duration: timedelta) -> float:
    """Stop trusting a lease a little before the database would let another worker take it."""
    seconds = duration.total_seconds()
    return started + seconds - min(seconds * 0.1, 1.0)


def leases_sync(*, stream: str, shards: Iterable[Mapping]) -> int:
    """Make sure every shard of the stream has a lease row; returns how many were added.

    ``shards`` are ListShards entries. Rows are never deleted here: a finished parent must stay
    so that its children know they may start.
    """
    rows = [
        ShardLease(
            stream=stream,
            shard_id=shard["ShardId"],
            parent_shard_ids=[p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p],
        )
        for shard in shards
    ]
    before = ShardLease.objects.filter(stream=stream).count()
    ShardLease.objects.bulk_create(rows, ignore_conflicts=True)
    return ShardLease.objects.filter(stream=stream).count() - before


def lease_views(*, stream: str) -> list[LeaseView]:
    expired = Case(
        When(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now()), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    rows = (
        ShardLease.objects.filter(stream=stream)
        .annotate(expired=expired)
        .values_list(
            "id", "shard_id", "owner", "pending_owner", "lease_counter", "expired", "finished", "parent_shard_ids"
        )
        .order_by("shard_id")
    )
    return [
        LeaseView(pk, shard, owner, pending, counter, bool(is_expired), finished, tuple(parents or ()))
        for pk, shard, owner, pending, counter, is_expired, finished, parents in rows
    ]


def readable(views: Iterable[LeaseView]) -> list[LeaseView]:
    """Unfinished leases whose parents are read to their end (a child waits for its parents)."""
    views = list(views)
    finished = {v.shard_id for v in views if v.finished}
    known = {v.shard_id for v in views}
    return [v for v in views if not v.finished and all(p in finished or p not in known for p in v.parent_shard_ids)]


def plan_balance(*, views: Iterable[LeaseView], worker: str) -> Plan:
    """Which free leases to take and which to ask other workers for, to reach a fair share.

    The fair share is the readable leases divided by the workers seen (owners, workers waiting
    for a hand-over, and this one), rounded up. Free (unowned or expired) leases are taken first;
    then, as the Kinesis Client Library does, leases are requested from the most loaded worker
    while it holds more than the share, or holds the share while this worker needs two or more.
    """
    active = readable(views)
    owners = Counter(v.live_owner for v in active if v.live_owner)
    workers = set(owners) | {v.pending_owner for v in active if v.pending_owner and v.live_owner} | {worker}
    target = math.ceil(len(active) / len(workers)) if active else 0
    asked = [v for v in active if v.pending_owner == worker and v.live_owner and v.live_owner != worker]
    need = target - owners[worker] - len(asked)
    plan = Plan()
    if need <= 0:
        return plan
    for view in active:
        if need == 0:
            break
        if not view.live_owner:
            plan.take.append(view)
            need -= 1
    load = Counter({owner: count for owner, count in owners.items() if owner != worker})
    for view in asked:
        load[view.live_owner] -= 1
    while need > 0 and load:
        victim, count = load.most_common(1)[0]
        if not (count > target or (count == target and need > 1)):
            break
        candidates = [v for v in active if v.live_owner == victim and not v.pending_owner and v not in plan.request]
        if not candidates:
            del load[victim]
            continue
        plan.request.append(candidates[-1])
        load[victim] -= 1
        need -= 1
    return plan


def _held(lease: ShardLease, *, started: float, duration: timedelta, has_parent_leases: bool) -> HeldLease:
    return HeldLease(
        lease_id=lease.pk,
        stream=lease.stream,
        shard_id=lease.shard_id,
        counter=lease.lease_counter,
        checkpoint_sequence=lease.checkpoint_sequence,
        checkpoint_sub_sequence=lease.checkpoint_sub_sequence,
        parent_shard_ids=list(lease.parent_shard_ids or []),
        deadline=_local_deadline(started, duration),
        has_parent_leases=has_parent_leases,
    )


def _load_held(lease_id: int, *, started: float, duration: timedelta) -> HeldLease:
    lease = ShardLease.objects.get(pk=lease_id)
    has_parents = (
        bool(lease.parent_shard_ids)
        and ShardLease.objects.filter(stream=lease.stream, shard_id__in=lease.parent_shard_ids).exists()
    )
    return _held(lease, started=started, duration=duration, has_parent_leases=has_parents)


def lease_take(*, view: LeaseView, worker: str, duration: timedelta) -> HeldLease | None:
    """Take a free lease (unowned or expired) if nobody changed it since ``view`` was read."""
    started = time.monotonic()
    free = Q(owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now())
    updated = ShardLease.objects.filter(free, pk=view.lease_id, lease_counter=view.counter, finished=False).update(
        owner=worker, pending_owner="", lease_counter=F("lease_counter") + 1, lease_expires_at=_expiry(duration)
    )
    if not updated:
        return None
    return _load_held(view.lease_id, started=started, duration=duration)


def lease_adopt(*, lease_id: int, counter: int, worker: str, duration: timedelta) -> HeldLease | None:
    """Start reading a lease that the database says is ours (handed over to us, or ours before an outage)."""
    started = time.monotonic()
    updated = ShardLease.objects.filter(pk=lease_id, owner=worker, lease_counter=counter, finished=False).update(
        pending_owner=Case(When(pending_owner=worker, then=Value("")), default=F("pending_owner")),
        lease_counter=F("lease_counter") + 1,
        lease_expires_at=_expiry(duration),
    )
    if not updated:
        return None
    return _load_held(lease_id, started=started, duration=duration)


def lease_request(*, view: LeaseView, worker: str) -> bool:
    """Ask the owner to hand this lease over after its current batch."""
    return bool(
        ShardLease.objects.filter(
            pk=view.lease_id, owner=view.owner, lease_counter=view.counter, pending_owner="", finished=False
        ).update(pending_owner=worker)
    )


@dataclass
class RenewResult:
    lost: list[str] = field(default_factory=list)  # shard ids
    requested: dict[str, str] = field(default_factory=dict)  # shard id -> worker asking for it
    handed_to_us: list[tuple[int, int]] = field(default_factory=list)  # (lease id, counter)


def leases_renew(
    *, stream: str, worker: str, held: Mapping[str, HeldLease], duration: timedelta, stats: Mapping[str, dict]
) -> RenewResult:
    """Extend every held lease (and store its lag and rate); report lost ones and hand-over requests."""
    result = RenewResult()
    with transaction.atomic():
        for shard_id, lease in held.items():
            started = time.monotonic()
            updated = ShardLease.objects.filter(pk=lease.lease_id, owner=worker, lease_counter=lease.counter).update(
                lease_counter=F("lease_counter") + 1, lease_expires_at=_expiry(duration), **stats.get(shard_id, {})
            )
            if updated:
                lease.counter += 1
                lease.deadline = _local_deadline(started, duration)
            else:
                result.lost.append(shard_id)
        for pk, shard_id, counter, pending in ShardLease.objects.filter(
            stream=stream, owner=worker, finished=False
        ).values_list("id", "shard_id", "lease_counter", "pending_owner"):
            if shard_id not in held:
                result.handed_to_us.append((pk, counter))
            elif pending and pending != worker and shard_id not in result.lost:
                result.requested[shard_id] = pending
    return result


def lease_release(*, lease: HeldLease, worker: str, duration: timedelta) -> bool:
    """Give the lease up: to the worker that asked for it, or to whoever takes it next.

    A hand-over gives the new owner one lease period to start renewing it; if it has gone away
    meanwhile, the lease expires and any worker takes it.
    """
    handed = ShardLease.objects.filter(pk=lease.lease_id, owner=worker, lease_counter=lease.counter).update(
        owner=F("pending_owner"),
        pending_owner="",
        lease_counter=F("lease_counter") + 1,
        lease_expires_at=Case(
            When(pending_owner="", then=Value(None, output_field=DateTimeField())),
            default=_expiry(duration),
        ),
    )
    return bool(handed)


def lease_checkpoint(
    *, lease: HeldLease, worker: str, sequence: str, sub_sequence: int, records: int, millis_behind: int | None
) -> None:
    """Record how far the shard is read. Call it in the transaction that stored those records.

    Raises ``LeaseLost`` (and so rolls the transaction back) when the worker no longer holds the lease.
    """
    updated = ShardLease.objects.filter(pk=lease.lease_id, owner=worker, lease_counter=lease.counter).update(
        checkpoint_sequence=sequence,
        checkpoint_sub_sequence=sub_sequence,
        records_processed=F("records_processed") + records,
        millis_behind_latest=millis_behind,
        last_checkpoint_at=Now(),
    )
    if not updated:
        raise LeaseLost(f"{lease.stream}/{lease.shard_id}: lease no longer held by {worker}")


def lease_finish(*, lease: HeldLease, worker: str) -> None:
    """The shard is closed and read to its end: its children may start. The lease is released."""
    updated = ShardLease.objects.filter(pk=lease.lease_id, owner=worker, lease_counter=lease.counter).update(
        finished=True,
        checkpoint_sequence=SHARD_END,
        checkpoint_sub_sequence=0,
        owner="",
        pending_owner="",
        lease_counter=F("lease_counter") + 1,
        lease_expires_at=None,
        millis_behind_latest=0,
        records_per_second=0.0,
        last_checkpoint_at=Now(),
    )
    if not updated:
        raise LeaseLost(f"{lease.stream}/{lease.shard_id}: lease no longer held by {worker}")
