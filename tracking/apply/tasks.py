"""The apply task: workers run it for a group of instances; safe to run twice (acks_late)."""

from celery import shared_task
from django.db import DatabaseError


# The name is the one the task had before the pipeline's modules were grouped by stage, so that
# messages queued by an older release still find it.
@shared_task(
    name="tracking.tasks.apply_pending",
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def apply_pending(instance_ids: list[int]) -> int:
    from tracking.apply.applier import instances_apply_pending

    return instances_apply_pending(instance_ids=instance_ids)
