"""Celery tasks that deliver the outbox, and the beat task that sweeps what a lost task left."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="tracking.tasks.deliver_notifications", acks_late=True)
def deliver_notifications(pairs: list[list[int]]) -> None:
    from tracking.notify.delivery import deliver_pending

    for subscription_id, instance_id in pairs:
        wait = deliver_pending(subscription_id=subscription_id, instance_id=instance_id)
        if wait is not None:
            deliver_notifications.apply_async(args=[[[subscription_id, instance_id]]], countdown=wait)


@shared_task(name="tracking.tasks.sweep_notifications")
def sweep_notifications() -> int:
    from tracking.notify.delivery import due_pairs

    pairs = due_pairs()
    if pairs:
        deliver_notifications.delay([list(pair) for pair in pairs])
    return len(pairs)


@shared_task(name="tracking.tasks.notify_delays")
def notify_delays() -> int:
    from tracking.notify.delays import delays_notify

    return delays_notify()
