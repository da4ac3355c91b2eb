"""The customer's progress page, reached through a signed link (tracking/progress/links.py), no login.

Server-rendered, so it works fully without JavaScript; with it, htmx polls the live fragment and
swaps it in place. The poll carries a stamp of what the browser shows: while nothing changed
the answer is an empty 204 after one query, so an open page costs next to nothing. The page and
the poll are rate limited per client address (429 with Retry-After; htmx then keeps what it shows).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from api_access.throttling import rate_limited
from tracking.models import ProcessInstance
from tracking.notify.emails import model_offers_email
from tracking.progress.links import tracking_token_nonce
from tracking.progress.selectors import instance_customer_page, instance_for_customer

# Django 5.2 has no Content-Security-Policy support of its own (it comes in 6.0), and this one
# fixed policy for three responses needs no nonces or per-view tuning, so a small decorator
# sets it rather than a dependency (docs/customer-page.md). Scripts, styles and everything else
# come from this origin only; no inline script or style, no plugins, no framing, no forms.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The URL is the customer's key: never send it to another site, never cache or index it.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store, private",
    "X-Robots-Tag": "noindex, nofollow",
}


def customer_page_response(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send the page's security headers on every answer, the 404 included."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except Http404 as exc:
            # The project's ordinary 404: a bad link looks exactly like a page that never existed.
            response = response_for_exception(request, exc)
        for header, value in PAGE_HEADERS.items():
            response.headers[header] = value
        return response

    return wrapped


def _instance_or_404(token: str) -> ProcessInstance:
    nonce = tracking_token_nonce(token)
    instance = instance_for_customer(nonce=nonce) if nonce else None
    if instance is None:
        raise Http404()
    return instance


def _stamp(instance: ProcessInstance, now) -> tuple[str, str]:
    """What a rendering depends on: the instance's last change, and the minute (for "delayed"
    and the estimate, which move with the clock alone).

    Each instance's minute turns at a second of its own (its id modulo 60): were it the clock's
    minute, every open page would fetch the fragment within one poll interval after each turn of
    the minute, a thousand pages polling every 3 s some 330 renderings a second for 3 s.
    """
    changed = (instance.updated_at - EPOCH) // timedelta(microseconds=1)
    return str(changed), str((int(now.timestamp()) + instance.pk % 60) // 60)


def _context(request: HttpRequest, token: str, instance: ProcessInstance, now, *, announce: bool) -> dict:
    changed, minute = _stamp(instance, now)
    return {
        "page": instance_customer_page(instance=instance, now=now),
        "live_url": f"{reverse('tracking-page-live', kwargs={'token': token})}?since={changed}.{minute}",
        "poll_seconds": settings.STATUSTRACKER_PAGE_POLL_SECONDS,
        "announce": announce,
        # The form lives on its own page: this one's policy allows no form (docs/customer-email.md).
        "email_url": reverse("tracking-email", kwargs={"token": token})
        if model_offers_email(model_id=instance.model_id)
        else None,
    }


@require_safe
@customer_page_response
@rate_limited("page")
def instance_page(request: HttpRequest, token: str) -> HttpResponse:
    instance = _instance_or_404(token)
    now = timezone.now()
    return render(request, "tracking/page.html", _context(request, token, instance, now, announce=False))


@require_safe
@customer_page_response
@rate_limited("page-poll")
def instance_page_live(request: HttpRequest, token: str) -> HttpResponse:
    """The live part of the page; 204 when what the browser shows is still current."""
    instance = _instance_or_404(token)
    now = timezone.now()
    changed, minute = _stamp(instance, now)
    shown_changed, _, shown_minute = request.GET.get("since", "").partition(".")
    if (shown_changed, shown_minute) == (changed, minute):
        return HttpResponse(status=204)
    # Screen readers hear the new status only when the instance changed, not on the minute.
    announce = shown_changed != changed
    return render(request, "tracking/_live.html", _context(request, token, instance, now, announce=announce))
