"""The safety net for lost tasks: instances whose pending events waited too long are enqueued again."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tracking.inbox.dispatch import enqueue_instances
from tracking.models import EventStatus, InboxEvent

logger = logging.getLogger(__name__)


def pending_sweep(*, older_than: timedelta | None = None) -> int:
    """Enqueue again the instances whose pending events have waited too long (a task was lost)."""
    if older_than is None:
        older_than = timedelta(seconds=settings.STATUSTRACKER_SWEEP_AFTER_SECONDS)
    cutoff = timezone.now() - older_than
    rows = (
        InboxEvent.objects.filter(status=EventStatus.PENDING, received_at__lt=cutoff)
        # An instance held by a failed event waits for an operator, not for the sweep.
        .exclude(instance_id__in=InboxEvent.objects.filter(status=EventStatus.FAILED).values("instance_id"))
        .values_list("instance_id", "model__queue")
        .distinct()
    )
    queues = dict(rows)
    if queues:
        logger.warning("sweep: re-enqueueing %d instances with pending events older than %s", len(queues), older_than)
        enqueue_instances(queues)
    return len(queues)
