"""A webhook receiver inside the app, for local runs only: ``make run`` subscribes it to the simulated
orders, so that their notifications can be seen arriving, signatures checked, at /dev/webhooks/.

It answers only while ``STATUSTRACKER_DEV_RECEIVER`` and ``DEBUG`` are both on (bin/run sets them);
otherwise each of its URLs is a 404, so a production configuration that sets the flag by mistake
exposes nothing. What it received is kept in the shared cache (the last ``KEEP`` deliveries), not in
a table, so that nothing of it exists in a production database.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from tracking.notify.delivery import subscription_secrets
from tracking.notify.models import WebhookSubscription
from tracking.notify.signing import sign

logger = logging.getLogger(__name__)

RECEIVE_PATH = "/dev/webhooks/receive"
PAGE_PATH = "/dev/webhooks/"
# What bootstrap_local names the subscription it makes (and finds again on the next run).
SUBSCRIPTION_DESCRIPTION = "make run: the development receiver at /dev/webhooks/"
KEEP = 300
# Standard Webhooks' advice: refuse a timestamp this far from now (replays of an old message).
TIMESTAMP_TOLERANCE = 5 * 60
_CACHE_KEY = "dev-webhooks:received"
_LOCK_KEY = "dev-webhooks:lock"


def receiver_enabled() -> bool:
    return bool(settings.STATUSTRACKER_DEV_RECEIVER and settings.DEBUG)


def signature_problem(*, secrets: list[str], headers: dict[str, str], body: bytes, now: float) -> str:
    """Why these headers do not sign this body with any of the secrets ("" when one does)."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not (message_id and timestamp and signatures):
        return "webhook-id, webhook-timestamp or webhook-signature missing"
    if not timestamp.isdigit():
        return "webhook-timestamp is not a number of seconds"
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE:
        return "webhook-timestamp is more than 5 minutes away from now"
    for secret in secrets:
        expected = sign(secret, message_id, int(timestamp), body)
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return ""
    return "no signature matches the subscription's secret"


def receiver_subscriptions() -> list[WebhookSubscription]:
    """The subscriptions whose URL is this receiver, on any host and port (make run's PORT varies)."""
    candidates = WebhookSubscription.objects.filter(url__contains=RECEIVE_PATH).select_related("model")
    return [s for s in candidates if urlsplit(s.url).path == RECEIVE_PATH]


def _record(entry: dict) -> None:
    """Put a delivery at the head of the list. Two web processes may record at once: a short lock in
    the cache (atomic on Redis, nearly so on the file cache) keeps one from dropping the other's."""
    for _ in range(50):
        if cache.add(_LOCK_KEY, 1, timeout=5):
            break
        time.sleep(0.02)
    try:
        cache.set(_CACHE_KEY, [entry, *cache.get(_CACHE_KEY, [])][:KEEP], timeout=None)
    finally:
        cache.delete(_LOCK_KEY)


def received_deliveries() -> list[dict]:
    """What the receiver got, newest first."""
    return cache.get(_CACHE_KEY, [])


def received_clear() -> None:
    cache.delete(_CACHE_KEY)


@csrf_exempt
def webhook_receive(request: HttpRequest) -> HttpResponse:
    """POST /dev/webhooks/receive: 204 for a delivery signed with a subscription's secret, else 401."""
    if not receiver_enabled():
        raise Http404
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    body = request.body
    headers = {name.lower(): value for name, value in request.headers.items()}
    now = time.time()
    subscription, problem = None, "no subscription is set up for this URL"
    for candidate in receiver_subscriptions():
        problem = signature_problem(
            secrets=subscription_secrets(candidate, timezone.now()), headers=headers, body=body, now=now
        )
        if not problem:
            subscription = candidate
            break
    try:
        payload = json.loads(body)
        data = payload.get("data") or {}
    except (ValueError, AttributeError):
        payload, data = {}, {}
    entry = {
        "received_at": datetime.fromtimestamp(now, tz=UTC),
        "webhook_id": headers.get("webhook-id", ""),
        "type": payload.get("type", "") if isinstance(payload, dict) else "",
        "model_id": data.get("model_id", ""),
        "transaction_id": data.get("transaction_id", ""),
        "from_state": data.get("from_state") or "",
        "to_state": data.get("to_state") or "",
        "verified": subscription is not None,
        "problem": problem if subscription is None else "",
    }
    _record(entry)
    logger.info(
        "webhook received: %s %s %s %s -> %s, %s",
        entry["webhook_id"] or "(no webhook-id)", entry["type"] or "(no type)", entry["transaction_id"],
        entry["from_state"] or "(created)", entry["to_state"],
        "signature verified" if subscription else f"refused: {problem}",
    )  # fmt: skip
    if subscription is None:
        return HttpResponse(problem, status=401, content_type="text/plain")
    return HttpResponse(status=204)


def _received_page(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Webhooks received",
        "deliveries": received_deliveries(),
        "subscriptions": receiver_subscriptions(),
        "receive_url": request.build_absolute_uri(RECEIVE_PATH),
        "keep": KEEP,
    }
    return render(request, "admin/dev_webhooks.html", context)


def received_page(request: HttpRequest) -> HttpResponse:
    """GET /dev/webhooks/: staff only, what the receiver got, newest first."""
    if not receiver_enabled():
        raise Http404
    return admin.site.admin_view(_received_page)(request)
