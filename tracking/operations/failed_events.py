"""An operator's answer to a failed event: retry it, or skip it so that its instance goes on.

Either way the instance's other events are enqueued again once the change commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from tracking.apply.locks import instances_for_update
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import ApplyFailure, EventStatus, InboxEvent


def _failed_events(event_pks: Iterable[int]):
    events = InboxEvent.objects.filter(pk__in=list(event_pks), status=EventStatus.FAILED)
    instance_ids = set(events.values_list("instance_id", flat=True))
    list(instances_for_update(instance_ids))  # no worker applies these instances meanwhile
    return events.filter(status=EventStatus.FAILED), instance_ids


def _enqueue_after_commit(events) -> None:
    queues = dict(events.values_list("instance_id", "model__queue"))
    transaction.on_commit(lambda: enqueue_instances(queues))


@transaction.atomic
def events_retry_failed(*, event_pks: Iterable[int]) -> int:
    """Failed events become pending again, with a fresh count of tries; returns how many."""
    events, instance_ids = _failed_events(event_pks)
    pks = list(events.values_list("pk", flat=True))
    ApplyFailure.objects.filter(instance_id__in=instance_ids).delete()
    count = InboxEvent.objects.filter(pk__in=pks).update(status=EventStatus.PENDING, reason="", processed_at=None)
    _enqueue_after_commit(InboxEvent.objects.filter(pk__in=pks))
    return count


@transaction.atomic
def events_skip_failed(*, event_pks: Iterable[int], actor, note: str = "") -> int:
    """Failed events are set aside as ``skipped`` (who and why in their reason); returns how many."""
    events, _ = _failed_events(event_pks)
    pks = list(events.values_list("pk", flat=True))
    who = getattr(actor, "username", None) or "an operator"
    reason = f"skipped by {who}" + (f": {note}" if note else "")
    count = InboxEvent.objects.filter(pk__in=pks).update(
        status=EventStatus.SKIPPED, reason=reason[:500], processed_at=timezone.now()
    )
    _enqueue_after_commit(InboxEvent.objects.filter(pk__in=pks))
    return count
