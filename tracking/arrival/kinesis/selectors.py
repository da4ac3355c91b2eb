"""Reads for the admin and ``/metrics``: the consumer's progress per shard."""

from __future__ import annotations

from django.db.models import QuerySet

from tracking.models import ShardLease


def shard_leases() -> QuerySet[ShardLease]:
    return ShardLease.objects.order_by("stream", "shard_id")
