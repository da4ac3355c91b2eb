"""Reads of the inbox as a whole, for ``/metrics``: its backlog and the dead letters."""

from django.db.models import Count

from tracking.models import DeadLetter, EventStatus, InboxEvent


def inbox_backlog() -> dict[str, int]:
    """Open events by status (pending: not applied yet; parked: waiting for their instance; failed:
    waiting for an operator to retry or skip them)."""
    statuses = (EventStatus.PENDING, EventStatus.PARKED, EventStatus.FAILED)
    counts = dict(
        InboxEvent.objects.filter(status__in=statuses)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in statuses}


def dead_letter_count() -> int:
    """Open dead letters: neither replayed nor discarded (what still needs an operator)."""
    return DeadLetter.objects.filter(replayed_at__isnull=True, discarded_at__isnull=True).count()
