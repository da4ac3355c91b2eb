"""Customer email updates, the bookkeeping: which models mail which changes, subscriptions and their
double opt-in, the outbox rows the apply writes, and the claims a delivery takes (docs/customer-email.md).

The apply calls ``email_outbox_write`` in its transaction (from ``outbox_write``): a mail tells of a
change if and only if the change committed. Its cost is bounded for the hot path: no database query
when no model offers email (the models' settings come from the shared cache), and otherwise one
query per apply batch, on a partial index of confirmed subscriptions.

What a mail says and how it is sent (it carries the customer's page link) is
``tracking.progress.email_messages``; the tasks are ``tracking.progress.email_tasks``, asked for by
name here so that this package never reaches the instance models (``lint-imports``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from tracking.bulk import bulk_insert
from tracking.notify.changes import Change, step_changes
from tracking.notify.email_models import CustomerEmailChange, CustomerEmailSettings, EmailSubscription

logger = logging.getLogger(__name__)

SETTINGS_CACHE_KEY = "statustracker:customer-email-kinds"
SETTINGS_CACHE_SECONDS = 3600  # the admin's save clears it at once; this only bounds a lost clear
CONFIRM_SALT = "statustracker.tracking.email-confirm"
UNSUBSCRIBE_SALT = "statustracker.tracking.email-unsubscribe"
# A claim older than this was taken by a worker that died while sending: the sweep sends it again.
CLAIM_TIMEOUT = timedelta(minutes=10)
MAX_SUBSCRIPTIONS_PER_INSTANCE = 10
# An unconfirmed address gets the confirmation mail again at most this often, however often it is sent.
CONFIRMATION_RESEND_AFTER = timedelta(minutes=10)
DELIVER_TASK = "tracking.tasks.deliver_customer_emails"
CONFIRM_TASK = "tracking.tasks.send_email_confirmation"
FINISHED_STATUSES = ("succeeded", "failed")


# --- what each model mails -------------------------------------------------------------------------


def email_kinds_by_model() -> dict[int, list[str]]:
    """Change kinds mailed per model id, for the models that mail any; from the shared cache."""
    kinds = cache.get(SETTINGS_CACHE_KEY)
    if kinds is None:
        kinds = {row.model_id: row.change_kinds() for row in CustomerEmailSettings.objects.all()}
        kinds = {model_id: wanted for model_id, wanted in kinds.items() if wanted}
        cache.set(SETTINGS_CACHE_KEY, kinds, SETTINGS_CACHE_SECONDS)
    return kinds


def model_offers_email(*, model_id: int) -> bool:
    return model_id in email_kinds_by_model()


def customer_email_settings_changed() -> None:
    """Call after settings are saved or deleted: every process reads them afresh."""
    cache.delete(SETTINGS_CACHE_KEY)


# --- the outbox ------------------------------------------------------------------------------------


def _rows(subscription_ids, version_id: int, change: Change, occurred_at: datetime) -> list[dict]:
    return [
        {
            "subscription_id": subscription_id,
            "kind": change.kind,
            "version_id": version_id,
            "from_state": change.from_state,
            "to_state": change.to_state,
            "milestone": (change.milestone or {}).get("key", ""),
            "outcome": change.outcome or "",
            "occurred_at": occurred_at,
            "claimed_at": None,
        }
        for subscription_id in subscription_ids
    ]


def _confirmed(instance_ids) -> dict[int, list[int]]:
    by_instance: dict[int, list[int]] = defaultdict(list)
    rows = EmailSubscription.objects.filter(instance_id__in=list(instance_ids), confirmed_at__isnull=False)
    for pk, instance_id in rows.values_list("pk", "instance_id"):
        by_instance[instance_id].append(pk)
    return by_instance


def email_outbox_write(applied: Sequence, *, now: datetime) -> None:
    """Outbox rows for the changes of these applied steps (``outbox.AppliedSteps``) that mail someone."""
    if not applied:
        return
    enabled = email_kinds_by_model()
    candidates = [entry for entry in applied if entry.instance.model_id in enabled]
    if not candidates:
        return
    subscribed = _confirmed(entry.instance.pk for entry in candidates)
    rows = []
    for entry in candidates:
        subscription_ids = subscribed.get(entry.instance.pk)
        if not subscription_ids:
            continue
        wanted = enabled[entry.instance.model_id]
        for step in entry.steps:
            event = entry.events.get(step.event_key)
            occurred_at = getattr(event, "occurred_at", None) or now
            for change in step_changes(version_id=entry.version_id, from_state=step.from_state, to_state=step.to_state):
                if change.kind in wanted:
                    rows += _rows(subscription_ids, entry.version_id, change, occurred_at)
    _write(rows)


def email_changes_write(items: Sequence, *, now: datetime) -> None:
    """Outbox rows for changes made outside the apply (``outbox.InstanceChange``: the delay check)."""
    enabled = email_kinds_by_model()
    items = [item for item in items if item.change.kind in enabled.get(item.instance.model_id, ())]
    if not items:
        return
    subscribed = _confirmed(item.instance.pk for item in items)
    rows = []
    for item in items:
        subscription_ids = subscribed.get(item.instance.pk)
        if subscription_ids:
            rows += _rows(subscription_ids, item.instance.version_id, item.change, now)
    _write(rows)


def _write(rows: list[dict]) -> None:
    if not rows:
        return
    bulk_insert(CustomerEmailChange, rows)
    subscription_ids = sorted({row["subscription_id"] for row in rows})
    transaction.on_commit(lambda: _queue(DELIVER_TASK, subscription_ids))


def _queue(task: str, *args, countdown: float | None = None) -> None:
    try:
        current_app.send_task(task, args=list(args), countdown=countdown)
    except Exception:  # the broker is away: the sweep sends them (email_due)
        logger.warning("could not queue %s; the sweep will send it", task)


# --- subscribing -----------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The address as given, its domain in lower case (the local part may be case-sensitive)."""
    local, _, domain = email.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


@transaction.atomic
def email_subscribe(*, instance_id: int, email: str, language: str, now: datetime) -> EmailSubscription | None:
    """Ask for updates: a confirmation mail goes out after the commit (returns its subscription), or
    nothing when the address is confirmed already, was sent a confirmation a moment ago, or the
    instance has as many subscriptions as it may. The customer is told the same in every case, so
    the page never says which addresses are subscribed."""
    email = normalize_email(email)
    subscription = (
        EmailSubscription.objects.select_for_update().filter(instance_id=instance_id, email__iexact=email).first()
    )
    if subscription is not None:
        if subscription.confirmed_at is not None:
            return None
        sent = subscription.confirmation_sent_at
        if sent is not None and now - sent < CONFIRMATION_RESEND_AFTER:
            return None
        subscription.language = language
        subscription.confirmation_sent_at = None
        subscription.save(update_fields=["language", "confirmation_sent_at"])
    else:
        if EmailSubscription.objects.filter(instance_id=instance_id).count() >= MAX_SUBSCRIPTIONS_PER_INSTANCE:
            logger.warning(
                "instance %s has %d email subscriptions; no more", instance_id, MAX_SUBSCRIPTIONS_PER_INSTANCE
            )
            return None
        subscription = EmailSubscription.objects.create(instance_id=instance_id, email=email, language=language)
    subscription_id = subscription.pk
    transaction.on_commit(lambda: _queue(CONFIRM_TASK, subscription_id))
    return subscription


def email_confirmation_due(*, subscription_id: int) -> EmailSubscription | None:
    """The subscription whose confirmation mail is to be sent, or None (confirmed or gone)."""
    return EmailSubscription.objects.select_related("instance").filter(pk=subscription_id, confirmed_at=None).first()


def email_confirmation_sent(*, subscription_id: int, now: datetime) -> None:
    EmailSubscription.objects.filter(pk=subscription_id).update(confirmation_sent_at=now)


def email_subscription_confirm(*, key: str, now: datetime) -> EmailSubscription | None:
    """Confirm the subscription (the link of the confirmation mail); None when it is gone."""
    subscription = EmailSubscription.objects.filter(key=key).first()
    if subscription is not None and subscription.confirmed_at is None:
        EmailSubscription.objects.filter(pk=subscription.pk, confirmed_at=None).update(confirmed_at=now)
        subscription.confirmed_at = now
    return subscription


def email_unsubscribe(*, key: str) -> bool:
    """End a subscription: the row and the address are deleted, with the changes it was owed."""
    deleted, _ = EmailSubscription.objects.filter(key=key).delete()
    return bool(deleted)


def instance_email_subscriptions_delete(*, instance_id: int) -> int:
    """Forget every address subscribed to an instance (its customer links were revoked)."""
    deleted, _ = EmailSubscription.objects.filter(instance_id=instance_id).delete()
    return deleted


def email_link_token(*, key: str, purpose: str) -> str:
    """A signed token for a subscription's confirm or unsubscribe link."""
    if purpose == "confirm":
        return signing.TimestampSigner(salt=CONFIRM_SALT).sign(key)
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(key)


def email_link_key(*, token: str, purpose: str) -> str | None:
    """The subscription key a link carries, or None when it is tampered with (or, to confirm, expired)."""
    try:
        if purpose == "confirm":
            return signing.TimestampSigner(salt=CONFIRM_SALT).unsign(
                token, max_age=settings.STATUSTRACKER_EMAIL_CONFIRM_MAX_AGE
            )
        return signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    except signing.BadSignature:
        return None


# --- delivery: at most one mail per subscription and interval ----------------------------------------


@dataclass(frozen=True)
class EmailClaim:
    """Changes a worker has taken to tell in one mail."""

    subscription: EmailSubscription
    changes: list[CustomerEmailChange]
    previous_sent_at: datetime | None


def email_interval() -> timedelta:
    return timedelta(seconds=settings.STATUSTRACKER_EMAIL_INTERVAL_SECONDS)


@transaction.atomic
def email_changes_claim(*, subscription_id: int, now: datetime) -> EmailClaim | float | None:
    """Take the subscription's waiting changes for one mail, or say how many seconds to wait (the
    last mail went out less than an interval ago), or None when there is nothing to send."""
    subscription = (
        EmailSubscription.objects.select_for_update()
        .select_related("instance")
        .filter(pk=subscription_id, confirmed_at__isnull=False)
        .first()
    )
    if subscription is None:
        return None
    changes = list(
        subscription.changes.filter(Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_TIMEOUT)).order_by("id")
    )
    if not changes:
        return None
    if subscription.last_sent_at is not None:
        wait = (subscription.last_sent_at + email_interval() - now).total_seconds()
        if wait > 0:
            return wait
    CustomerEmailChange.objects.filter(pk__in=[change.pk for change in changes]).update(claimed_at=now)
    previous = subscription.last_sent_at
    EmailSubscription.objects.filter(pk=subscription.pk).update(last_sent_at=now)
    return EmailClaim(subscription, changes, previous)


def email_claim_sent(claim: EmailClaim) -> None:
    """The mail went out: the changes it told of are done with."""
    CustomerEmailChange.objects.filter(pk__in=[change.pk for change in claim.changes]).delete()


def email_claim_release(claim: EmailClaim) -> None:
    """The mail could not be sent: its changes wait again, and the interval does not hold the retry."""
    with transaction.atomic():
        CustomerEmailChange.objects.filter(pk__in=[change.pk for change in claim.changes]).update(claimed_at=None)
        EmailSubscription.objects.filter(pk=claim.subscription.pk).update(last_sent_at=claim.previous_sent_at)


# --- the sweep ---------------------------------------------------------------------------------------


def email_due(*, now: datetime) -> tuple[list[int], list[int]]:
    """What a lost task left behind: (subscriptions owed a confirmation mail, subscriptions with
    changes to tell that nothing is sending). Rows younger than a minute still have their task."""
    settled = now - timedelta(minutes=1)
    confirmations = list(
        EmailSubscription.objects.filter(
            confirmed_at=None, confirmation_sent_at=None, created_at__lt=settled
        ).values_list("pk", flat=True)[:1000]
    )
    waiting = (
        CustomerEmailChange.objects.filter(created_at__lt=settled)
        .filter(Q(claimed_at=None) | Q(claimed_at__lt=now - CLAIM_TIMEOUT))
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    return confirmations, list(waiting[:1000])


def email_subscriptions_expire(*, now: datetime) -> int:
    """Forget addresses nobody needs any more: unconfirmed ones once their link has expired, and
    every subscription of a request that ended ``STATUSTRACKER_EMAIL_RETENTION_DAYS`` ago."""
    unconfirmed = now - timedelta(seconds=settings.STATUSTRACKER_EMAIL_CONFIRM_MAX_AGE)
    ended = now - timedelta(days=settings.STATUSTRACKER_EMAIL_RETENTION_DAYS)
    deleted, _ = EmailSubscription.objects.filter(
        Q(confirmed_at=None, created_at__lt=unconfirmed)
        | Q(instance__status__in=FINISHED_STATUSES, instance__updated_at__lt=ended)
    ).delete()
    return deleted
