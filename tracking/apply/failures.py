"""When applying fails for one instance: count its tries, say when to try again, and in the end
mark the event that fails as ``failed``, so that it holds up nothing but its own instance.

Attempts are kept in ``ApplyFailure`` rows, written only when something fails, so that the count
survives lost tasks and the sweep. Database outages are not failures of an instance: the task
retries those as a whole (``TRANSIENT_DATABASE_ERRORS``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from tracking.apply.applier import describe_error, instances_apply_pending
from tracking.apply.locks import instances_for_update
from tracking.models import ApplyFailure, EventStatus, InboxEvent

logger = logging.getLogger(__name__)

# A lost or refused connection: nothing is wrong with the instances, the task tries again.
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)
MAX_RETRY_SECONDS = 300.0


def retry_delay(attempts: int) -> float:
    """Seconds to wait before try ``attempts + 1``: doubling from the configured first wait."""
    return min(settings.STATUSTRACKER_APPLY_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)


def _retry_window() -> timedelta:
    """Past this long since the last failure, earlier failures of an instance are forgotten."""
    tries = settings.STATUSTRACKER_APPLY_MAX_ATTEMPTS
    return timedelta(seconds=2 * sum(retry_delay(n) for n in range(1, tries + 1)) + 3600)


@transaction.atomic
def instance_apply_failed(*, instance_id: int, error: str) -> int:
    """Record a failed try of an instance; returns how many tries have failed in a row."""
    now = timezone.now()
    failure, created = ApplyFailure.objects.select_for_update().get_or_create(
        instance_id=instance_id, defaults={"attempts": 1, "last_error": error, "last_failed_at": now}
    )
    if not created:
        recent = now - failure.last_failed_at < _retry_window()
        failure.attempts = failure.attempts + 1 if recent else 1
        failure.last_error, failure.last_failed_at = error, now
        failure.save(update_fields=["attempts", "last_error", "last_failed_at"])
    logger.warning("applying instance %s failed (try %d): %s", instance_id, failure.attempts, error)
    return failure.attempts


def instance_fail_offending_event(*, instance_id: int) -> str | None:
    """After the last try: offer the instance's pending events one at a time, in arrival order.

    Those that apply are kept; the first that fails is marked ``failed`` with its error, and
    the instance is held there. Returns that event's id, or None when everything applied.
    """
    failed_event = None
    while True:
        try:
            report = instances_apply_pending(instance_ids=[instance_id], first_pending_only=True)
        except TRANSIENT_DATABASE_ERRORS:
            raise
        except Exception as exc:  # a row that cannot be read or written: that event is the culprit
            error = describe_error(exc)
        else:
            if instance_id not in report.failed:
                if report.decided:
                    continue
                break
            error = report.failed[instance_id]
        failed_event = _first_pending_event_fail(instance_id=instance_id, error=error)
        break
    ApplyFailure.objects.filter(instance_id=instance_id).delete()
    return failed_event


@transaction.atomic
def _first_pending_event_fail(*, instance_id: int, error: str) -> str | None:
    list(instances_for_update([instance_id]))
    first = (
        InboxEvent.objects.filter(instance_id=instance_id, status=EventStatus.PENDING)
        .order_by("id")
        .values_list("id", "event_id")
        .first()
    )
    if first is None:
        return None
    pk, event_id = first
    InboxEvent.objects.filter(pk=pk).update(status=EventStatus.FAILED, reason=error[:500], processed_at=timezone.now())
    logger.error("event %s of instance %s failed on every try and holds its instance: %s", event_id, instance_id, error)
    return event_id
