"""The answer to a login that django-axes has locked out (``AXES_LOCKOUT_CALLABLE``).

Axes counts failed logins per user name and client address in the shared cache. Once a pair
reaches ``AXES_FAILURE_LIMIT``, every further attempt of it is answered 429 with ``Retry-After``
until ``AXES_COOLOFF_TIME`` has passed since its last attempt (an attempt during the lockout starts
the wait again), whatever the password.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else None
    message = gettext("Too many failed login attempts for this account from your address.")
    if seconds:
        message += " " + gettext("Please try again in %(minutes)d minutes.") % {"minutes": math.ceil(seconds / 60)}
    response = HttpResponse(message + "\n", status=429, content_type="text/plain; charset=utf-8")
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response
