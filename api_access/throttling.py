"""Rate limits on the shared cache: the API's DRF throttles and the customer page's limit.

Every limit counts requests in fixed windows (say, 600 per minute: the minute of the clock) in
Django's default cache, which every web process shares (``CACHES`` in settings: Redis, or a table
in the database; never per-process memory, which would allow the rate once per process). A request
over the limit is answered 429 with ``Retry-After``: the seconds until its window ends. Rates are
``STATUSTRACKER_RATE_LIMITS`` (docs/production.md), read on every request.

A fixed window is one counter per client and window, incremented atomically in Redis; a client
can at most reach twice the rate across a window boundary, which is fine for limits meant to stop
floods, not to meter. When the cache is unreachable the counter reads as a first request
(``statustracker.cache``), so an outage lifts the limits rather than refusing everyone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from rest_framework.throttling import BaseThrottle

from api_access.models import ApiToken

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"600/minute"`` -> (600, 60); empty -> None (no limit). Periods: second, minute, hour, day."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    try:
        requests = int(count)
        seconds = PERIOD_SECONDS[period.strip()[:1].lower()]
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            f"Rate limit {rate!r} is not '<requests>/<second|minute|hour|day>' (or empty for no limit)."
        ) from None
    if requests < 1:
        raise ImproperlyConfigured(f"Rate limit {rate!r} must allow at least one request.")
    return requests, seconds


def client_address(request: HttpRequest) -> str:
    """The address a request came from, seen through ``NUM_PROXIES`` trusted proxies.

    Behind proxies, each appends the address it received from to ``X-Forwarded-For``: the entry
    ``NUM_PROXIES`` from the end was written by the outermost trusted proxy, so the client cannot
    forge it. With no proxy (0, the default), ``REMOTE_ADDR``. django-axes uses this too
    (``AXES_CLIENT_IP_CALLABLE``), so every limit agrees on who the client is.
    """
    proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        addresses = [address.strip() for address in forwarded.split(",")]
        return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR", "") or ""


def rate_limit_hit(*, scope: str, ident: str) -> int | None:
    """Count one request of ``ident`` against the limit of ``scope``.

    Returns None when it is within the limit, else the seconds until the window ends
    (``Retry-After``).
    """
    parsed = parse_rate(settings.STATUSTRACKER_RATE_LIMITS.get(scope, ""))
    if parsed is None:
        return None
    requests, seconds = parsed
    now = time.time()
    window = int(now // seconds)
    remaining = max(1, math.ceil((window + 1) * seconds - now))
    # Addresses and token ids are short; the slice only keeps a forged header from making long keys.
    key = f"ratelimit:{scope}:{ident[:100]}:{window}"
    if cache.add(key, 1, timeout=remaining + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr: a new window has begun
            cache.add(key, 1, timeout=remaining + 1)
            count = 1
        else:
            # incr keeps the expiry in Redis; the database and file caches reset it to the default.
            cache.touch(key, timeout=remaining + 1)
    return remaining if count > requests else None


def too_many_requests(retry_after: int) -> HttpResponse:
    """A plain 429 for pages (the API's comes from DRF, in the API's error format)."""
    message = gettext("Too many requests. Please try again in %(seconds)d seconds.") % {"seconds": retry_after}
    return HttpResponse(
        message + "\n",
        status=429,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": str(retry_after)},
    )


def rate_limited(scope: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Limit a Django view per client address to the rate of ``scope``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            retry_after = rate_limit_hit(scope=scope, ident=client_address(request))
            if retry_after is not None:
                return too_many_requests(retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class _SharedCacheThrottle(BaseThrottle):
    scope = ""

    def ident(self, request) -> str | None:
        """Who is counted; None when this throttle does not apply to the request."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        self.retry_after = None if ident is None else rate_limit_hit(scope=self.scope, ident=ident)
        return self.retry_after is None

    def wait(self) -> int | None:
        return self.retry_after


class TokenRateThrottle(_SharedCacheThrottle):
    """Requests with an API token, counted per token (``api-token``)."""

    scope = "api-token"

    def ident(self, request) -> str | None:
        token = getattr(request, "auth", None)
        # The hash names the token for good: a row id could be reused by a restored database.
        return token.key_hash[:32] if isinstance(token, ApiToken) else None


class AnonRateThrottle(_SharedCacheThrottle):
    """Requests without a token (the schema, the API docs), counted per client address (``api-anon``)."""

    scope = "api-anon"

    def ident(self, request) -> str | None:
        return None if isinstance(getattr(request, "auth", None), ApiToken) else client_address(request)


@register()
def rate_limits_check(app_configs, **kwargs) -> list[Error]:
    """Report a malformed rate at ``manage.py check`` (and start-up), not at the first request."""
    errors = []
    for scope, rate in getattr(settings, "STATUSTRACKER_RATE_LIMITS", {}).items():
        try:
            parse_rate(rate)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint=f"Rate limit of '{scope}' (docs/production.md).", id="api_access.E001"))
    return errors
