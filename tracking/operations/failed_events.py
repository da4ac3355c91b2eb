"""An operator's answer to a failed event: retry it, or skip it so that its instance goes on.

Either way the instance's other events are enqueued again once the change commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from tracking.models import ApplyFailure, EventStatus, InboxEvent
from tracking.operations.open_events import actor_reason, enqueue_after_commit, events_locked


@transaction.atomic
def events_retry_failed(*, event_pks: Iterable[int]) -> int:
    """Failed events become pending again, with a fresh count of tries; returns how many."""
    events, instance_ids = events_locked(event_pks, status=EventStatus.FAILED)
    pks = list(events.values_list("pk", flat=True))
    ApplyFailure.objects.filter(instance_id__in=instance_ids).delete()
    count = InboxEvent.objects.filter(pk__in=pks).update(status=EventStatus.PENDING, reason="", processed_at=None)
    enqueue_after_commit(InboxEvent.objects.filter(pk__in=pks))
    return count


@transaction.atomic
def events_skip_failed(*, event_pks: Iterable[int], actor, note: str = "") -> int:
    """Failed events are set aside as ``skipped`` (who and why in their reason); returns how many."""
    events, _ = events_locked(event_pks, status=EventStatus.FAILED)
    pks = list(events.values_list("pk", flat=True))
    count = InboxEvent.objects.filter(pk__in=pks).update(
        status=EventStatus.SKIPPED, reason=actor_reason("skipped", actor, note), processed_at=timezone.now()
    )
    enqueue_after_commit(InboxEvent.objects.filter(pk__in=pks))
    return count
