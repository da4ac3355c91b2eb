"""Reads of the inbox as a whole, for ``/metrics``: its backlog and the dead letters."""

from django.db.models import Count

from tracking.models import DeadLetter, EventStatus, InboxEvent


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
