"""An operator's answer to parked events: try them again now, or expire them before ``park_ttl``.

Parked events are otherwise tried again only after a transition of their instance (docs/decisions.md);
retrying them by hand is for when what they waited for will not come by itself, e.g. an instance
that never started once its model accepts their type as a start event.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from tracking.models import EventStatus, InboxEvent
from tracking.operations.open_events import actor_reason, enqueue_after_commit, events_locked


@transaction.atomic
def events_retry_parked(*, event_pks: Iterable[int]) -> int:
    """Parked events become pending, to be offered to their instance again by a worker as if new
    (in arrival order with its other open events); returns how many.

    One that still cannot apply is parked again, or ignored when it never can.
    """
    events, _ = events_locked(event_pks, status=EventStatus.PARKED)
    pks = list(events.values_list("pk", flat=True))
    count = InboxEvent.objects.filter(pk__in=pks).update(status=EventStatus.PENDING, reason="", processed_at=None)
    enqueue_after_commit(InboxEvent.objects.filter(pk__in=pks))
    return count


def instances_retry_parked(*, instance_ids: Iterable[int]) -> int:
    """The parked events of these instances are tried again (``events_retry_parked``)."""
    parked = InboxEvent.objects.filter(instance_id__in=list(instance_ids), status=EventStatus.PARKED)
    return events_retry_parked(event_pks=parked.values_list("pk", flat=True))


@transaction.atomic
def events_expire_parked_now(*, event_pks: Iterable[int], actor, note: str = "") -> int:
    """Parked events become expired at once, with who and why in their reason; returns how many."""
    events, _ = events_locked(event_pks, status=EventStatus.PARKED)
    return events.update(
        status=EventStatus.EXPIRED, reason=actor_reason("expired", actor, note), processed_at=timezone.now()
    )
