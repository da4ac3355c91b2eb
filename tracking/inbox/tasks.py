"""The inbox's periodic tasks (Celery beat): the sweep for lost tasks and the expiry of parked events."""

from celery import shared_task


@shared_task(name="tracking.tasks.sweep_pending", acks_late=True)
def sweep_pending() -> int:
    from tracking.inbox.sweep import pending_sweep

    return pending_sweep()


@shared_task(name="tracking.tasks.expire_parked", acks_late=True)
def expire_parked() -> int:
    from tracking.inbox.expiry import events_expire_parked

    return events_expire_parked()
