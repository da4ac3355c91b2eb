"""Hand instances with new events to the workers: apply tasks, many instances to a task, per queue.

Sending is best effort. It runs after the events' transaction has committed, so the events are
stored whatever the broker does; when it cannot take the tasks (down, restarting, refusing
writes), the failure is logged and the events wait in the inbox until a worker reconnects to the
broker and sweeps every pending event (tracking.inbox.reconnect), or, should no reconnection
follow, until the periodic sweep finds them by age (tracking.inbox.sweep).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from itertools import islice

from django.conf import settings

from tracking.apply.tasks import apply_pending

logger = logging.getLogger(__name__)


def _chunks(values: list, size: int) -> Iterable[list]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def enqueue_instances(queue_by_instance: dict[int, str]) -> bool:
    """Send apply tasks, many instances to a task, each model's work to its own queue.

    Returns False, having logged why, when the broker did not take them all; never raises for it.
    """
    by_queue: dict[str, list[int]] = defaultdict(list)
    for instance_id, queue in queue_by_instance.items():
        by_queue[queue or settings.CELERY_TASK_DEFAULT_QUEUE].append(instance_id)
    try:
        for queue, instance_ids in by_queue.items():
            for chunk in _chunks(sorted(instance_ids), settings.STATUSTRACKER_TASK_BATCH_SIZE):
                apply_pending.apply_async(args=[chunk], queue=queue)  # CELERY_TASK_PUBLISH_RETRY_POLICY
    # Whatever the broker or its client raises (refused, timed out, a full Redis refusing writes):
    # the caller's events are stored, and a request or a Kinesis batch must not fail for this.
    except Exception:
        logger.exception(
            "could not send apply tasks for %d instances; their events stay pending until a worker "
            "reconnects to the broker (or the sweep finds them by age)",
            len(queue_by_instance),
        )
        return False
    return True
