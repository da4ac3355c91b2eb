"""Webhook subscriptions as businesses manage them, in the admin and the API: the one validator of
what a subscription may ask for, and the services that create, change, rotate, enable and test one,
and that send notifications again by hand.

What a subscription may filter on comes from its model's latest published version: its states, its
milestones and the context fields its transitions set or its page displays. Older versions' keys
are not offered; a subscription keeps those it has until it is edited.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from models_registry.definition import milestone_groups
from models_registry.models import ModelVersion, StatusModel
from tracking.notify import sender
from tracking.notify.delivery import send_notification, subscription_secrets
from tracking.notify.models import ChangeKind, DeliveryStatus, Notification, WebhookSubscription, new_webhook_secret
from tracking.notify.signing import signature_headers

DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
TEST_EVENT_TYPE = "webhook.test"


@dataclass(frozen=True)
class FilterChoices:
    """What a subscription to one model may choose from: (key, label) pairs, in the model's order."""

    version_number: int | None
    states: list[tuple[str, str]]
    milestones: list[tuple[str, str]]
    context_fields: list[str]

    @property
    def published(self) -> bool:
        return self.version_number is not None


def filter_choices(*, status_model: StatusModel) -> FilterChoices:
    """The states, milestones and known context fields of the model's latest published version."""
    version = ModelVersion.objects.filter(model=status_model).order_by("-number").first()
    if version is None:
        return FilterChoices(None, [], [], [])
    document = version.document
    fields: list[str] = []
    for transition in document.get("transitions", []):
        fields.extend(name for name in (transition.get("set") or {}) if name not in fields)
    fields.extend(entry["field"] for entry in document.get("display") or [] if entry["field"] not in fields)
    return FilterChoices(
        version.number,
        [(state["key"], state.get("label") or state["key"]) for state in document["states"]],
        [(group["key"], group["label"]) for group in milestone_groups(document)],
        fields,
    )


def url_problem(url: str) -> str | None:
    """Why the service will not call this URL, or None.

    With ``WEBHOOK_ALLOW_PRIVATE_NETWORKS`` only the form is checked: the address is checked again,
    as connected to, at every delivery (``sender.post``).
    """
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "only http and https URLs with a host are allowed"
        return None
    try:
        sender.resolve_safe(url)
    except sender.UnsafeUrl as error:
        return str(error)
    return None


def _unknown(field: str, chosen: Iterable[str], known: Iterable[str], what: str, version: int) -> dict:
    missing = [value for value in chosen if value not in set(known)]
    if not missing:
        return {}
    names = ", ".join(repr(value) for value in missing)
    return {field: [f"{names}: not a {what} of the model's latest version (v{version})"]}


def subscription_problems(
    *,
    status_model: StatusModel,
    url: str | None,
    kinds: Sequence[str] = (),
    states: Sequence[str] = (),
    milestones: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Every problem of a subscription, by field; empty when it may be saved. ``url`` None: unchanged."""
    problems: dict[str, list[str]] = {}
    if url is not None and (why := url_problem(url)):
        problems["url"] = [f"This URL is refused: {why}."]
    choices = filter_choices(status_model=status_model)
    if not choices.published:
        problems["model_id"] = [f"Model {status_model.key!r} has no published version yet."]
        return problems
    if unknown_kinds := [kind for kind in kinds if kind not in ChangeKind.values]:
        names = ", ".join(repr(kind) for kind in unknown_kinds)
        problems["kinds"] = [f"{names}: not a kind of change ({', '.join(ChangeKind.values)})"]
    problems |= _unknown("states", states, [key for key, _ in choices.states], "state", choices.version_number)
    problems |= _unknown(
        "milestones", milestones, [key for key, _ in choices.milestones], "milestone", choices.version_number
    )
    return problems


FILTER_FIELDS = ("url", "description", "kinds", "states", "milestones", "context_fields")


def subscription_create(
    *,
    status_model: StatusModel,
    url: str,
    kinds: Sequence[str] = (),
    states: Sequence[str] = (),
    milestones: Sequence[str] = (),
    context_fields: Sequence[str] = (),
    description: str = "",
    actor=None,
) -> WebhookSubscription:
    """A new, active subscription with a fresh secret (the caller shows it once)."""
    with transaction.atomic():
        return WebhookSubscription.objects.create(
            model=status_model,
            url=url,
            description=description,
            kinds=list(kinds),
            states=list(states),
            milestones=list(milestones),
            context_fields=list(context_fields),
            created_by=actor,
        )


def subscription_update(*, subscription: WebhookSubscription, **changes) -> WebhookSubscription:
    """Change a subscription's endpoint, description or filters (its model never changes)."""
    unknown = set(changes) - set(FILTER_FIELDS)
    if unknown:
        raise TypeError(f"not a changeable field: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        for name, value in changes.items():
            setattr(subscription, name, list(value) if isinstance(value, list | tuple) else value)
        subscription.save(update_fields=list(changes) or None)
    return subscription


def subscription_rotate_secret(*, subscription: WebhookSubscription, overlap: timedelta = DEFAULT_OVERLAP) -> str:
    """A new secret, returned to be shown once. The old one signs too for ``overlap`` (each message
    carries both signatures meanwhile), so receivers can switch without losing a message; a secret
    older than that is dropped."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise ValueError(f"the overlap must be between 0 and {MAX_OVERLAP.days} days")
    with transaction.atomic():
        locked = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        locked.previous_secret = locked.secret if overlap else ""
        locked.previous_secret_expires_at = timezone.now() + overlap if overlap else None
        locked.secret = new_webhook_secret()
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    subscription.secret = locked.secret
    subscription.previous_secret, subscription.previous_secret_expires_at = (
        locked.previous_secret,
        locked.previous_secret_expires_at,
    )
    return locked.secret


def subscription_enable(*, subscription: WebhookSubscription) -> None:
    """Send to the endpoint again; the sweep sends what was kept while it was disabled, in order."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=True, disabled_at=None, disabled_reason="")
    subscription.is_active, subscription.disabled_at, subscription.disabled_reason = True, None, ""


def subscription_pause(*, subscription: WebhookSubscription, actor) -> None:
    """Stop sending by hand. Unlike a failing endpoint's disabling, no alert; changes made meanwhile
    are not kept (the outbox writes rows for active subscriptions only), those already kept are."""
    reason = f"Disabled by {actor.get_username()}" if actor is not None else "Disabled by hand"
    now = timezone.now()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_at=now, disabled_reason=reason
    )
    subscription.is_active, subscription.disabled_at, subscription.disabled_reason = False, now, reason


def sample_payload(subscription: WebhookSubscription, now) -> dict:
    return {
        "type": TEST_EVENT_TYPE,
        "timestamp": now.isoformat(),
        "data": {
            "model_id": subscription.model.key,
            "subscription_id": subscription.pk,
            "message": "A test event sent from statustracker; it tells of no change.",
        },
    }


def subscription_send_test(*, subscription: WebhookSubscription) -> tuple[str, sender.Sent]:
    """POST a signed test event now (whether the subscription is active or not) and return its
    ``webhook-id`` and what the endpoint answered. It is no notification: nothing is kept or retried."""
    now = timezone.now()
    message_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps(sample_payload(subscription, now), separators=(",", ":"), ensure_ascii=False).encode()
    headers = signature_headers(subscription_secrets(subscription, now), message_id, int(now.timestamp()), body)
    return message_id, sender.post(subscription.url, body, headers)


@dataclass(frozen=True)
class Redelivery:
    notification_id: int
    sent: sender.Sent | None  # None: a worker was sending it at that moment; not sent again
    status: str  # the notification's status afterwards


def notifications_redeliver(*, notification_ids: Sequence[int]) -> list[Redelivery]:
    """Send notifications again now, each once, logged as manual tries.

    A 2xx makes a pending or given-up notification ``delivered`` (its retries stop); a delivered one
    stays delivered, and a failure changes nothing: a manual try is not one of the schedule's. The
    endpoint's being disabled does not stop an operator's redelivery.
    """
    results = []
    for notification_id in sorted(notification_ids):
        with transaction.atomic():
            notification = (
                Notification.objects.select_for_update(skip_locked=True)
                .select_related("subscription__model")
                .filter(pk=notification_id)
                .first()
            )
            if notification is None:
                status = Notification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
                if status is not None:
                    results.append(Redelivery(notification_id, None, status))
                continue
            sent = send_notification(notification, notification.subscription, manual=True)
            if sent.ok and notification.status != DeliveryStatus.DELIVERED:
                notification.status, notification.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
                notification.next_attempt_at = None
                notification.save(update_fields=["status", "delivered_at", "next_attempt_at"])
            results.append(Redelivery(notification_id, sent, notification.status))
    return results
