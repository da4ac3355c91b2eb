"""Celery tasks: thin wrappers that call services. All are safe to run twice (acks_late)."""

from celery import shared_task
from django.db import DatabaseError


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def apply_pending(instance_ids: list[int]) -> int:
    from tracking.services import instances_apply_pending

    return instances_apply_pending(instance_ids=instance_ids)


@shared_task(acks_late=True)
def sweep_pending() -> int:
    from tracking.services import pending_sweep

    return pending_sweep()


@shared_task(acks_late=True)
def expire_parked() -> int:
    from tracking.services import events_expire_parked

    return events_expire_parked()
