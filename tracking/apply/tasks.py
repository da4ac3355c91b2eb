"""The apply task: workers run it for a group of instances; safe to run twice (acks_late).

One instance that fails never holds up another. A group that fails as a whole (a row the
database refuses fails the whole statement) is split in two and both halves are sent again at
once, down to single instances; an instance that fails alone is tried again with a doubling
wait, and after STATUSTRACKER_APPLY_MAX_ATTEMPTS tries its offending event is marked failed
(tracking.apply.failures). A lost database connection is retried as a whole instead.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)


# The name is the one the task had before the pipeline's modules were grouped by stage, so that
# messages queued by an older release still find it.
@shared_task(
    bind=True,
    name="tracking.tasks.apply_pending",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def apply_pending(self, instance_ids: list[int]) -> int:
    from tracking.apply.applier import ApplyReport, describe_error, instances_apply_pending
    from tracking.apply.failures import (
        TRANSIENT_DATABASE_ERRORS,
        instance_apply_failed,
        instance_fail_offending_event,
        retry_delay,
    )

    # Retries go to the queue this task came from (a model may have its own).
    queue = (self.request.delivery_info or {}).get("routing_key") or settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        report = instances_apply_pending(instance_ids=instance_ids)
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception as exc:
        if len(instance_ids) > 1:
            middle = len(instance_ids) // 2
            logger.warning("applying %d instances failed (%s); trying each half alone", len(instance_ids), exc)
            for half in (instance_ids[:middle], instance_ids[middle:]):
                apply_pending.apply_async(args=[half], queue=queue)
            return 0
        report = ApplyReport(failed={instance_ids[0]: describe_error(exc)})
    for instance_id, error in report.failed.items():
        attempts = instance_apply_failed(instance_id=instance_id, error=error)
        if attempts < settings.STATUSTRACKER_APPLY_MAX_ATTEMPTS:
            apply_pending.apply_async(args=[[instance_id]], queue=queue, countdown=retry_delay(attempts))
        else:
            instance_fail_offending_event(instance_id=instance_id)
    return report.decided
