"""The lease protocol on the database: conditional updates decide every race."""

import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from tracking.arrival.kinesis.leases import (
    LeaseLost,
    LeaseView,
    lease_adopt,
    lease_checkpoint,
    lease_finish,
    lease_release,
    lease_request,
    lease_take,
    lease_views,
    leases_renew,
    leases_sync,
    plan_balance,
    readable,
)
from tracking.models import ShardLease

pytestmark = pytest.mark.django_db

DURATION = timedelta(seconds=5)


def _shards(*ids, parents=None):
    parents = parents or {}
    return [{"ShardId": shard, **parents.get(shard, {})} for shard in ids]


def _view(stream, shard_id):
    return next(v for v in lease_views(stream=stream) if v.shard_id == shard_id)


def test_sync_adds_each_shard_once_with_its_parents():
    added = leases_sync(stream="s", shards=_shards("a", "b"))
    again = leases_sync(
        stream="s",
        shards=_shards("a", "b", "c", parents={"c": {"ParentShardId": "a", "AdjacentParentShardId": "b"}}),
    )

    assert (added, again) == (2, 1)
    assert ShardLease.objects.get(stream="s", shard_id="c").parent_shard_ids == ["a", "b"]


def test_only_one_of_two_workers_taking_the_same_view_wins():
    leases_sync(stream="s", shards=_shards("a"))
    view = _view("s", "a")

    first = lease_take(view=view, worker="w1", duration=DURATION)
    second = lease_take(view=view, worker="w2", duration=DURATION)

    assert first is not None
    assert second is None
    assert ShardLease.objects.get().owner == "w1"


def test_a_held_lease_cannot_be_taken_until_it_expires():
    leases_sync(stream="s", shards=_shards("a"))
    lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)

    assert lease_take(view=_view("s", "a"), worker="w2", duration=DURATION) is None

    ShardLease.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = lease_take(view=_view("s", "a"), worker="w2", duration=DURATION)
    assert taken is not None
    assert ShardLease.objects.get().owner == "w2"


def test_a_worker_that_lost_its_lease_can_neither_checkpoint_nor_renew():
    leases_sync(stream="s", shards=_shards("a"))
    old = lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)
    ShardLease.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    lease_take(view=_view("s", "a"), worker="w2", duration=DURATION)

    with pytest.raises(LeaseLost):
        lease_checkpoint(lease=old, worker="w1", sequence="5", sub_sequence=0, records=1, millis_behind=0)
    result = leases_renew(stream="s", worker="w1", held={"a": old}, duration=DURATION, stats={})

    assert result.lost == ["a"]
    assert ShardLease.objects.get().checkpoint_sequence == ""


def test_checkpoint_and_renewal_of_a_held_lease():
    leases_sync(stream="s", shards=_shards("a"))
    held = lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)

    lease_checkpoint(lease=held, worker="w1", sequence="42", sub_sequence=3, records=7, millis_behind=100)
    result = leases_renew(
        stream="s", worker="w1", held={"a": held}, duration=DURATION, stats={"a": {"records_per_second": 12.5}}
    )

    row = ShardLease.objects.get()
    assert result.lost == []
    assert (row.checkpoint_sequence, row.checkpoint_sub_sequence, row.records_processed) == ("42", 3, 7)
    assert row.records_per_second == 12.5
    assert row.last_checkpoint_at is not None
    assert row.lease_counter == held.counter
    assert held.deadline > time.monotonic()


def test_handover_on_request_gives_the_lease_to_the_asking_worker():
    leases_sync(stream="s", shards=_shards("a"))
    held = lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)

    assert lease_request(view=_view("s", "a"), worker="w2")
    assert not lease_request(view=_view("s", "a"), worker="w3")  # one request at a time
    renewal = leases_renew(stream="s", worker="w1", held={"a": held}, duration=DURATION, stats={})
    assert renewal.requested == {"a": "w2"}
    lease_release(lease=held, worker="w1", duration=DURATION)
    handed = leases_renew(stream="s", worker="w2", held={}, duration=DURATION, stats={}).handed_to_us
    adopted = lease_adopt(lease_id=handed[0][0], counter=handed[0][1], worker="w2", duration=DURATION)

    row = ShardLease.objects.get()
    assert adopted is not None
    assert (row.owner, row.pending_owner) == ("w2", "")
    with pytest.raises(LeaseLost):
        lease_checkpoint(lease=held, worker="w1", sequence="1", sub_sequence=0, records=1, millis_behind=0)


def test_release_without_request_frees_the_lease_for_anyone():
    leases_sync(stream="s", shards=_shards("a"))
    held = lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)

    lease_release(lease=held, worker="w1", duration=DURATION)

    row = ShardLease.objects.get()
    assert (row.owner, row.lease_expires_at) == ("", None)
    assert lease_take(view=_view("s", "a"), worker="w2", duration=DURATION) is not None


def test_children_are_readable_only_after_all_parents_finished():
    leases_sync(
        stream="s",
        shards=_shards("a", "b", "c", parents={"c": {"ParentShardId": "a", "AdjacentParentShardId": "b"}}),
    )
    assert [v.shard_id for v in readable(lease_views(stream="s"))] == ["a", "b"]

    held = lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)
    lease_finish(lease=held, worker="w1")
    assert [v.shard_id for v in readable(lease_views(stream="s"))] == ["b"]

    held = lease_take(view=_view("s", "b"), worker="w1", duration=DURATION)
    lease_finish(lease=held, worker="w1")
    assert [v.shard_id for v in readable(lease_views(stream="s"))] == ["c"]
    assert ShardLease.objects.get(shard_id="a").checkpoint_sequence == "SHARD_END"


def test_expiry_is_judged_by_the_database_clock():
    leases_sync(stream="s", shards=_shards("a"))
    lease_take(view=_view("s", "a"), worker="w1", duration=DURATION)
    assert not _view("s", "a").expired

    ShardLease.objects.update(lease_expires_at=F("lease_expires_at") - timedelta(seconds=10))
    assert _view("s", "a").expired


def _views(owners: dict[str, str], pending: dict[str, str] | None = None) -> list[LeaseView]:
    pending = pending or {}
    return [
        LeaseView(i, shard, owner, pending.get(shard, ""), 1, False, False)
        for i, (shard, owner) in enumerate(owners.items())
    ]


def test_plan_takes_free_leases_up_to_the_fair_share():
    plan = plan_balance(views=_views({"a": "", "b": "", "c": "", "d": ""}), worker="w1")
    assert [v.shard_id for v in plan.take] == ["a", "b", "c", "d"]

    plan = plan_balance(views=_views({"a": "w2", "b": "", "c": "", "d": ""}), worker="w1")
    assert [v.shard_id for v in plan.take] == ["b", "c"]


def test_plan_asks_the_most_loaded_worker_for_leases():
    plan = plan_balance(views=_views({"a": "w1x", "b": "w1x", "c": "w1x", "d": "w1x"}), worker="w2")
    assert plan.take == []
    assert len(plan.request) == 2

    # 2 + 2 and a newcomer: it asks for one, and a second newcomer makes it 2/1/1 at most.
    plan = plan_balance(views=_views({"a": "x", "b": "x", "c": "y", "d": "y"}), worker="z")
    assert len(plan.request) == 1
    plan = plan_balance(views=_views({"a": "x", "b": "z", "c": "y", "d": "y"}), worker="z")
    assert plan.request == []


def test_plan_counts_outstanding_requests():
    views = _views({"a": "x", "b": "x", "c": "x", "d": "x"}, pending={"a": "z", "b": "z"})
    assert plan_balance(views=views, worker="z").request == []


def test_more_workers_than_shards_leave_the_extra_ones_idle():
    plan = plan_balance(views=_views({"a": "x", "b": "y"}), worker="z")
    assert plan.take == []
    assert plan.request == []
