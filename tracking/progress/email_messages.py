"""The customer's update mails: what they say, in the customer's language, and sending them.

Each mail has a plain-text and an HTML part (``templates/tracking/email/``), the customer's page link,
a signed one-click unsubscribe link, and the ``List-Unsubscribe`` and ``List-Unsubscribe-Post``
headers of RFC 8058, so that mail programs offer "unsubscribe" themselves. Sending goes through
Django's email backend: SMTP in production, files under ``var/mail`` on the embedded defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from models_registry.selectors import version_definition
from tracking.notify.changes import milestone_of_states
from tracking.notify.email_models import CustomerEmailChange, EmailSubscription
from tracking.notify.emails import (
    EmailClaim,
    email_changes_claim,
    email_claim_release,
    email_claim_sent,
    email_confirmation_due,
    email_confirmation_sent,
    email_link_token,
)
from tracking.progress.links import instance_tracking_url
from tracking.progress.selectors import instance_customer_page


@dataclass(frozen=True)
class ChangeLine:
    """One change as the mail tells it."""

    kind: str  # milestone, exception_entered, exception_left, delayed, success, failure
    label: str
    description: str
    at: datetime


def _absolute(path: str) -> str:
    return settings.STATUSTRACKER_PUBLIC_URL.rstrip("/") + path


def unsubscribe_url(subscription: EmailSubscription) -> str:
    token = email_link_token(key=subscription.key, purpose="unsubscribe")
    return _absolute(reverse("tracking-email-unsubscribe", kwargs={"token": token}))


def confirm_url(subscription: EmailSubscription) -> str:
    token = email_link_token(key=subscription.key, purpose="confirm")
    return _absolute(reverse("tracking-email-confirm", kwargs={"token": token}))


def _states(version_id: int) -> dict[str, dict]:
    return {state["key"]: state for state in version_definition(version_id=version_id).document["states"]}


def change_lines(changes: list[CustomerEmailChange]) -> list[ChangeLine]:
    """The changes in the order they happened; a milestone that is also the outcome is told once."""
    outcomes = {(change.version_id, change.to_state) for change in changes if change.kind == "outcome"}
    lines = []
    for change in changes:
        states = _states(change.version_id)
        state = states.get(change.to_state, {"label": change.to_state})
        label, description = state.get("label", change.to_state), state.get("description", "")
        if change.kind == "milestone":
            if (change.version_id, change.to_state) in outcomes:
                continue
            milestone = milestone_of_states(change.version_id).get(change.to_state)
            label, description = (milestone or {}).get("label", label), ""
            lines.append(ChangeLine("milestone", label, description, change.occurred_at))
        elif change.kind == "outcome":
            lines.append(ChangeLine(change.outcome or "success", label, description, change.occurred_at))
        elif change.kind == "exception_left":
            lines.append(ChangeLine("exception_left", label, "", change.occurred_at))
        else:
            lines.append(ChangeLine(change.kind, label, description, change.occurred_at))
    return lines


def _message(subscription: EmailSubscription, template: str, context: dict) -> EmailMultiAlternatives:
    unsubscribe = unsubscribe_url(subscription)
    context = {**context, "unsubscribe_url": unsubscribe}
    with translation.override(subscription.language):
        subject = " ".join(render_to_string(f"tracking/email/{template}_subject.txt", context).split())
        text = render_to_string(f"tracking/email/{template}.txt", context)
        html = render_to_string(f"tracking/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[subscription.email],
        headers={
            # RFC 8058: mail programs POST "List-Unsubscribe=One-Click" to this address.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def model_name(version_id: int) -> str:
    document = version_definition(version_id=version_id).document
    return document.get("name") or document.get("id", "")


def confirmation_message(subscription: EmailSubscription) -> EmailMultiAlternatives:
    instance = subscription.instance
    return _message(
        subscription,
        "confirm",
        {"model_name": model_name(instance.version_id), "confirm_url": confirm_url(subscription)},
    )


def update_message(claim: EmailClaim, *, now: datetime) -> EmailMultiAlternatives:
    subscription = claim.subscription
    instance = subscription.instance
    with translation.override(subscription.language):
        page = instance_customer_page(instance=instance, now=now)
    lines = change_lines(claim.changes)
    return _message(
        subscription,
        "update",
        {
            "model_name": page.model_name,
            "page": page,
            "lines": lines,
            "headline": lines[-1].label if lines else page.headline,
            "page_url": instance_tracking_url(instance=instance),
        },
    )


def confirmation_email_send(*, subscription_id: int, now: datetime) -> bool:
    """Send the confirmation mail (double opt-in); False when there is none to send."""
    subscription = email_confirmation_due(subscription_id=subscription_id)
    if subscription is None:
        return False
    confirmation_message(subscription).send()
    email_confirmation_sent(subscription_id=subscription_id, now=now)
    return True


def customer_emails_deliver(*, subscription_id: int, now: datetime) -> float | None:
    """Send one mail with every change waiting for this subscription; returns the seconds to wait
    when the last mail went out less than an interval ago (the changes then wait for one mail)."""
    claim = email_changes_claim(subscription_id=subscription_id, now=now)
    if not isinstance(claim, EmailClaim):
        return claim
    try:
        update_message(claim, now=now).send()
    except Exception:
        email_claim_release(claim)
        raise
    email_claim_sent(claim)
    return None
