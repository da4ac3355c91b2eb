"""Hand instances with new events to the workers: apply tasks, many instances to a task, per queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import islice

from django.conf import settings

from tracking.apply.tasks import apply_pending


def _chunks(values: list, size: int) -> Iterable[list]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def enqueue_instances(queue_by_instance: dict[int, str]) -> None:
    """Send apply tasks, many instances to a task, each model's work to its own queue."""
    by_queue: dict[str, list[int]] = defaultdict(list)
    for instance_id, queue in queue_by_instance.items():
        by_queue[queue or settings.CELERY_TASK_DEFAULT_QUEUE].append(instance_id)
    for queue, instance_ids in by_queue.items():
        for chunk in _chunks(sorted(instance_ids), settings.STATUSTRACKER_TASK_BATCH_SIZE):
            apply_pending.apply_async(args=[chunk], queue=queue)
