"""Celery tasks of the customer's update mails: the confirmation, the combined updates, and the sweep.

``tracking.notify.emails`` asks for them by name after its transaction commits. A task that waits
out the interval since the last mail is sent again with a countdown; the beat sweep sends what a
lost task left behind and forgets addresses past their time (docs/customer-email.md).
"""

from __future__ import annotations

import smtplib

from celery import shared_task

# SMTP failures and unreachable servers are retried; the sweep sends anything left after that.
RETRIED = (smtplib.SMTPException, OSError)


@shared_task(
    name="tracking.tasks.send_email_confirmation",
    acks_late=True,
    autoretry_for=RETRIED,
    retry_backoff=30,
    max_retries=5,
)
def send_email_confirmation(subscription_id: int) -> bool:
    from django.utils import timezone

    from tracking.progress.email_messages import confirmation_email_send

    return confirmation_email_send(subscription_id=subscription_id, now=timezone.now())


@shared_task(
    name="tracking.tasks.deliver_customer_emails",
    acks_late=True,
    autoretry_for=RETRIED,
    retry_backoff=30,
    max_retries=5,
)
def deliver_customer_emails(subscription_ids: list[int]) -> int:
    from django.utils import timezone

    from tracking.progress.email_messages import customer_emails_deliver

    sent = 0
    for subscription_id in subscription_ids:
        wait = customer_emails_deliver(subscription_id=subscription_id, now=timezone.now())
        if wait is None:
            sent += 1
        else:
            deliver_customer_emails.apply_async(args=[[subscription_id]], countdown=wait)
    return sent


@shared_task(name="tracking.tasks.sweep_customer_emails")
def sweep_customer_emails() -> int:
    from django.utils import timezone

    from tracking.notify.emails import email_due, email_subscriptions_expire

    now = timezone.now()
    email_subscriptions_expire(now=now)
    confirmations, waiting = email_due(now=now)
    for subscription_id in confirmations:
        send_email_confirmation.delay(subscription_id)
    if waiting:
        deliver_customer_emails.delay(waiting)
    return len(confirmations) + len(waiting)
