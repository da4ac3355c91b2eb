"""The inbox's tasks: the sweep for lost tasks (beat, and each worker's connection to the broker)
and the expiry of parked events (beat)."""

from datetime import timedelta

from celery import shared_task


@shared_task(name="tracking.tasks.sweep_pending", acks_late=True)
def sweep_pending(older_than_seconds: float | None = None) -> int:
    """Beat sends it without arguments (events older than STATUSTRACKER_SWEEP_AFTER_SECONDS); a
    worker that connects to the broker sends it with 0 (every pending event)."""
    from tracking.inbox.sweep import pending_sweep

    older_than = None if older_than_seconds is None else timedelta(seconds=older_than_seconds)
    return pending_sweep(older_than=older_than)


@shared_task(name="tracking.tasks.expire_parked", acks_late=True)
def expire_parked() -> int:
    from tracking.inbox.expiry import events_expire_parked

    return events_expire_parked()
