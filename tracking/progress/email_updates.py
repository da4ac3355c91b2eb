"""The customer's email updates: the form that asks for them (from the page's "Email me about
changes"), the confirmation link of the double opt-in, and unsubscribing (the link, and the
one-click POST of RFC 8058 that mail programs send).

These pages are the customer page's own: same look, same headers, and the same plain 404 for any
link that is wrong, expired or gone. Their Content-Security-Policy differs from the page's in one
directive only, ``form-action 'self'``, since each has a form; the progress page itself has none.
Addresses are never shown back: the answer to a request for updates reads the same whether the
address was new, waiting for its confirmation or confirmed already.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from api_access.throttling import client_address, rate_limit_hit, rate_limited, too_many_requests
from tracking.notify.email_models import EmailSubscription
from tracking.notify.emails import (
    email_link_key,
    email_subscribe,
    email_subscription_confirm,
    email_unsubscribe,
    model_offers_email,
)
from tracking.progress.email_messages import model_name
from tracking.progress.links import instance_tracking_url
from tracking.progress.selectors import instance_customer_page
from tracking.progress.views import CONTENT_SECURITY_POLICY, _instance_or_404, customer_page_response

FORM_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("form-action 'none'", "form-action 'self'")


def form_page_response(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The customer page's headers, with forms allowed to post to this site."""
    view = customer_page_response(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = FORM_CONTENT_SECURITY_POLICY
        return response

    return wrapped


class EmailUpdatesForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254)


def _render(request: HttpRequest, mode: str, **context) -> HttpResponse:
    return render(request, "tracking/email_updates.html", {"mode": mode, **context})


# No CSRF token: the signed link in the URL is what a forged request would need, as it is for the
# page; the page sets no cookie; and with "Referrer-Policy: no-referrer" browsers send "Origin: null",
# which Django's CSRF check refuses.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@form_page_response
@rate_limited("page")
def email_updates_page(request: HttpRequest, token: str) -> HttpResponse:
    """/track/<token>/email: ask for an instance's updates by email."""
    instance = _instance_or_404(token)
    if not model_offers_email(model_id=instance.model_id):
        raise Http404()
    page = instance_customer_page(instance=instance, now=timezone.now())
    back_url = reverse("tracking-page", kwargs={"token": token})
    form = EmailUpdatesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        retry_after = rate_limit_hit(scope="email-subscribe", ident=client_address(request))
        if retry_after is not None:
            return too_many_requests(retry_after)
        email_subscribe(
            instance_id=instance.pk,
            email=form.cleaned_data["email"],
            language=translation.get_language() or "en",
            now=timezone.now(),
        )
        return _render(request, "requested", page=page, back_url=back_url)
    return _render(request, "form", page=page, form=form, back_url=back_url)


def _subscription_or_404(token: str, purpose: str) -> tuple[str, EmailSubscription | None]:
    key = email_link_key(token=token, purpose=purpose)
    if key is None:
        raise Http404()
    return key, EmailSubscription.objects.select_related("instance").filter(key=key).first()


@csrf_exempt  # the signed link is the credential; there is no session to forge a request in
@require_http_methods(["GET", "HEAD", "POST"])
@form_page_response
@rate_limited("page")
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The confirmation mail's link: a button confirms (a GET alone does not, so that a mail
    scanner following links cannot subscribe anyone)."""
    key, subscription = _subscription_or_404(token, "confirm")
    if subscription is None:
        raise Http404()
    if request.method == "POST":
        subscription = email_subscription_confirm(key=key, now=timezone.now())
    if subscription.confirmed_at is None:
        return _render(request, "confirm", model_name=_model_name(subscription))
    return _render(
        request,
        "confirmed",
        model_name=_model_name(subscription),
        page_url=instance_tracking_url(instance=subscription.instance, request=request),
    )


@csrf_exempt  # mail programs POST "List-Unsubscribe=One-Click" with no cookie (RFC 8058)
@require_http_methods(["GET", "HEAD", "POST"])
@form_page_response
@rate_limited("page")
def email_unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """Every mail's unsubscribe link and ``List-Unsubscribe`` address. A POST unsubscribes at once
    (the one-click POST, or the page's button); a GET asks first, since scanners follow links."""
    key, subscription = _subscription_or_404(token, "unsubscribe")
    if request.method == "POST":
        email_unsubscribe(key=key)
        return _render(request, "unsubscribed")
    if subscription is None:
        return _render(request, "unsubscribed")
    return _render(request, "unsubscribe", model_name=_model_name(subscription))


def _model_name(subscription: EmailSubscription) -> str:
    return model_name(subscription.instance.version_id)
