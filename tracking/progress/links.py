"""Customer tracking links: signed, unguessable, optionally expiring, revocable per instance.

A link carries the instance's random ``link_nonce`` — never its transaction id or database id,
so links cannot be derived from anything a customer or a producer knows, and no public URL
accepts a transaction id — plus an optional expiry time, signed with ``SECRET_KEY`` through
``django.core.signing`` so that neither can be altered. Replacing the nonce
(``instance_tracking_link_renew`` below) revokes every link issued before.

Reading a token answers only "this nonce" or "nothing": a tampered, expired or unknown token
is told apart nowhere, so the page answers all of them with the same 404.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from tracking.models import ProcessInstance, new_link_nonce
from tracking.notify.emails import instance_email_subscriptions_delete

SALT = "statustracker.tracking.customer-link"
# Nonces are URL-safe base64 and never contain a dot; an expiring link appends ".<expiry>".
EXPIRY_SEPARATOR = "."


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def tracking_token(*, nonce: str, expires_in: timedelta | None = None) -> str:
    """The signed token for a nonce; with ``expires_in`` it stops working after that long."""
    value = nonce
    if expires_in is not None:
        expires_at = int(time.time() + expires_in.total_seconds())
        value = f"{nonce}{EXPIRY_SEPARATOR}{signing.b62_encode(expires_at)}"
    return _signer().sign(value)


def tracking_token_nonce(token: str, *, now: float | None = None) -> str | None:
    """The nonce a token carries, or None when it is tampered with, malformed or expired."""
    try:
        value = _signer().unsign(token)
    except signing.BadSignature:
        return None
    nonce, _, expiry = value.partition(EXPIRY_SEPARATOR)
    if expiry:
        try:
            expires_at = signing.b62_decode(expiry)
        except ValueError:
            return None
        if (time.time() if now is None else now) >= expires_at:
            return None
    return nonce or None


def default_link_lifetime() -> timedelta | None:
    seconds = settings.STATUSTRACKER_TRACKING_LINK_MAX_AGE
    return timedelta(seconds=seconds) if seconds else None


def instance_tracking_url(*, instance, request: HttpRequest | None = None, expires_in: timedelta | None = None) -> str:
    """The absolute URL of the instance's customer page.

    With a request (the API, the admin) the URL uses the host the caller reached; without one
    (a task, a shell) it uses ``STATUSTRACKER_PUBLIC_URL``. ``expires_in`` defaults to
    ``STATUSTRACKER_TRACKING_LINK_MAX_AGE`` (none when 0). The same instance gives the same URL
    until its nonce is renewed, unless the link expires (the expiry is part of the signed value).
    """
    if expires_in is None:
        expires_in = default_link_lifetime()
    path = reverse("tracking-page", kwargs={"token": tracking_token(nonce=instance.link_nonce, expires_in=expires_in)})
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.STATUSTRACKER_PUBLIC_URL.rstrip("/") + path


@transaction.atomic
def instance_tracking_link_renew(*, instance_id: int) -> str:
    """Revoke every customer link of an instance by giving it a new link nonce; returns the nonce.

    A plain UPDATE: the instance's ``updated_at`` (what the customer sees as "last updated") and
    its state are left alone. Email subscriptions made through the old links are deleted.
    """
    nonce = new_link_nonce()
    if not ProcessInstance.objects.filter(pk=instance_id).update(link_nonce=nonce):
        raise ProcessInstance.DoesNotExist(f"no instance {instance_id}")
    # Whoever had the old link may have asked for its updates by email: those stop too.
    instance_email_subscriptions_delete(instance_id=instance_id)
    return nonce
