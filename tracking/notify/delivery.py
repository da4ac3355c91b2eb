"""Delivering the outbox to webhook endpoints: at least once, in order per transaction and endpoint.

A notification is sent while its row is locked; it becomes ``delivered`` in the same transaction
that records the endpoint's 2xx, so a worker killed mid-delivery leaves it pending, and it is sent
again with the same ``webhook-id`` (receivers deduplicate on it). The oldest pending notification of
an (endpoint, instance) pair goes first, and the next waits until it is delivered or given up, so a
transaction's notifications reach an endpoint in order. A failure is retried with exponential
backoff and jitter for more than 24 hours (``STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE``); when the last
retry fails the notification is given up and its endpoint disabled, with an alert.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tracking.notify import sender
from tracking.notify.models import DeliveryAttempt, DeliveryStatus, Notification, WebhookSubscription
from tracking.notify.signing import signature_headers

logger = logging.getLogger(__name__)
JITTER = 0.2  # each wait is the schedule's, give or take a fifth
# A notification whose task may still be on its way is left to that task by the sweep.
SWEEP_GRACE = timedelta(seconds=30)


def retry_wait(attempts: int) -> float | None:
    """Seconds before try ``attempts + 1``, with jitter; None once the schedule is used up."""
    schedule = settings.STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (spreading retries, not secrets)


def subscription_secrets(subscription: WebhookSubscription, now) -> list[str]:
    """The secret, and the previous one while its overlap lasts (after a rotation)."""
    secrets = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires and expires > now:
        secrets.append(subscription.previous_secret)
    return secrets


def send_notification(notification: Notification, subscription: WebhookSubscription, *, manual=False):
    """POST one notification, record the try, and return what the endpoint answered."""
    notification.subscription = subscription  # its payload names the model: no query for it
    now = timezone.now()
    body = json.dumps(notification.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signature_headers(
        subscription_secrets(subscription, now), notification.webhook_id, int(now.timestamp()), body
    )
    sent = sender.post(subscription.url, body, headers)
    DeliveryAttempt.objects.create(
        notification=notification,
        status_code=sent.status_code,
        latency_ms=sent.latency_ms,
        response_excerpt=sent.body_excerpt,
        error=sent.error,
        manual=manual,
    )
    return sent


def _head(subscription_id: int, instance_id: int):
    """The oldest pending notification of the pair, locked; None when there is none or another worker
    holds it (that worker is sending this pair's notifications, in order)."""
    oldest = (
        Notification.objects.filter(
            subscription_id=subscription_id, instance_id=instance_id, status=DeliveryStatus.PENDING
        )
        .order_by("id")
        .values("id")[:1]
    )
    # The status again on the locked row: a row another worker delivered while this statement
    # waited is read again by PostgreSQL after the wait, and must not be sent a second time.
    return (
        Notification.objects.select_for_update(skip_locked=True)
        .filter(pk__in=oldest, status=DeliveryStatus.PENDING)
        .first()
    )


def deliver_pending(*, subscription_id: int, instance_id: int) -> float | None:
    """Send the pair's pending notifications in order until one fails or is not due yet.

    Returns in how many seconds to try again (None: nothing left to wait for).
    """
    subscription = WebhookSubscription.objects.select_related("model").filter(pk=subscription_id).first()
    if subscription is None or not subscription.is_active:
        return None
    while True:
        with transaction.atomic():
            notification = _head(subscription_id, instance_id)
            if notification is None:
                return None
            now = timezone.now()
            if notification.next_attempt_at and notification.next_attempt_at > now:
                return (notification.next_attempt_at - now).total_seconds()
            sent = send_notification(notification, subscription)
            notification.attempts += 1
            if sent.ok:
                notification.status, notification.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
                notification.next_attempt_at = None
                notification.save(update_fields=["status", "attempts", "delivered_at", "next_attempt_at"])
                continue
            wait = retry_wait(notification.attempts)
            if wait is not None:
                notification.next_attempt_at = timezone.now() + timedelta(seconds=wait)
                notification.save(update_fields=["attempts", "next_attempt_at"])
                logger.warning(
                    "webhook %s to %s failed (try %d: %s); trying again in %.0f s",
                    notification.webhook_id, subscription.url, notification.attempts,
                    sent.error or sent.status_code, wait,
                )  # fmt: skip
                return wait
            notification.status, notification.next_attempt_at = DeliveryStatus.GAVE_UP, None
            notification.save(update_fields=["status", "attempts", "next_attempt_at"])
            subscription_disable(subscription, reason=f"{notification.webhook_id} failed on every try for a day")
            return None


def subscription_disable(subscription: WebhookSubscription, *, reason: str) -> None:
    """Stop sending to an endpoint that keeps failing, and say so (log and the admins' mail)."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:500]
    )
    subscription.is_active = False
    message = (
        f"The webhook endpoint {subscription.url} of model {subscription.model.key} was disabled: {reason}. "
        "Its notifications are kept; enable it again in the admin once it answers, and they are sent."
    )
    logger.error(message)
    mail_admins(f"Webhook endpoint disabled: {subscription.url}", message, fail_silently=True)


def due_pairs(*, now=None, limit: int = 1000) -> list[tuple[int, int]]:
    """(endpoint, instance) pairs with a notification due, for the sweep."""
    now = now or timezone.now()
    due = (
        Notification.objects.filter(status=DeliveryStatus.PENDING, subscription__is_active=True)
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lt=now - SWEEP_GRACE))
        .values_list("subscription_id", "instance_id")
        .distinct()
        .order_by()
    )
    return list(due[:limit])
