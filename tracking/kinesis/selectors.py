"""Reads for the admin and ``/metrics``: the consumer's progress per shard, and the inbox's backlog."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from tracking.models import DeadLetter, EventStatus, InboxEvent, ShardLease


def shard_leases() -> QuerySet[ShardLease]:
    return ShardLease.objects.order_by("stream", "shard_id")


def inbox_backlog() -> dict[str, int]:
    """Open events by status (pending: not applied yet; parked: waiting for their instance)."""
    counts = dict(
        InboxEvent.objects.filter(status__in=[EventStatus.PENDING, EventStatus.PARKED])
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in (EventStatus.PENDING, EventStatus.PARKED)}


def dead_letter_count() -> int:
    return DeadLetter.objects.count()
