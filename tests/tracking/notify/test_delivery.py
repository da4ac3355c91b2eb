"""Delivering notifications to a real endpoint on 127.0.0.1: signed as Standard Webhooks says (checked
with the ``standardwebhooks`` package), in order per transaction, retried until the endpoint recovers,
given up after the last retry (the endpoint disabled, with an alert), and never to unsafe addresses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from tests.tracking.notify.test_outbox import ship_order, subscribe
from tracking.models import DeliveryAttempt, DeliveryStatus, Notification, WebhookSubscription
from tracking.notify import sender
from tracking.notify.delivery import deliver_pending, due_pairs

pytestmark = pytest.mark.django_db


def deliver_all() -> list[float]:
    """Deliver every pending pair once; the waits asked for."""
    waits = []
    for subscription_id, instance_id in (
        Notification.objects.filter(status=DeliveryStatus.PENDING).values_list("subscription_id", "instance_id")
    ).distinct():
        wait = deliver_pending(subscription_id=subscription_id, instance_id=instance_id)
        if wait is not None:
            waits.append(wait)
    return waits


def verified(subscription: WebhookSubscription, received) -> dict:
    """The body, once the independent implementation has verified its signature."""
    return Webhook(subscription.secret).verify(received.body, received.headers)


def test_deliveries_arrive_in_order_signed_with_a_stable_id(example_model, receiver):
    subscription = subscribe(url=receiver.url, kinds=["transition"])
    ship_order("A")

    deliver_all()

    assert [verified(subscription, r)["data"]["to_state"] for r in receiver.requests] == [
        "received", "paid", "packed", "shipped", "delivered",
    ]  # fmt: skip
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [n.webhook_id for n in Notification.objects.order_by("id")]
    assert set(Notification.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    log = DeliveryAttempt.objects.order_by("id").first()
    assert (log.status_code, log.error) == (204, "")
    assert log.latency_ms is not None


def test_a_failing_endpoint_is_retried_in_order_until_it_recovers(example_model, receiver, settings):
    settings.STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE = [60.0, 60.0, 60.0]
    subscription = subscribe(url=receiver.url, kinds=["transition"])
    ship_order("A")
    receiver.fail_next = 2

    waits = deliver_all()  # the first notification fails; the others wait behind it
    assert len(receiver.requests) == 1
    assert 48 <= waits[0] <= 72  # the schedule's first wait, give or take a fifth

    Notification.objects.update(next_attempt_at=timezone.now())  # the wait is over
    assert due_pairs() == [(subscription.pk, Notification.objects.first().instance_id)]
    deliver_all()  # fails again
    Notification.objects.update(next_attempt_at=timezone.now())
    deliver_all()  # recovers: everything goes, in order

    states = [verified(subscription, r)["data"]["to_state"] for r in receiver.requests]
    assert states == ["received", "received", "received", "paid", "packed", "shipped", "delivered"]
    assert len({r.headers["webhook-id"] for r in receiver.requests[:3]}) == 1  # the same message each time
    assert Notification.objects.order_by("id").first().attempts == 3


def test_after_the_last_retry_the_endpoint_is_disabled_with_an_alert(example_model, receiver, settings):
    settings.STATUSTRACKER_WEBHOOK_RETRY_SCHEDULE = [1.0]
    settings.ADMINS = [("Ops", "ops@example.com")]
    subscription = subscribe(url=receiver.url, kinds=["outcome"])
    ship_order("A")
    receiver.fail_next = 10

    deliver_all()
    Notification.objects.update(next_attempt_at=timezone.now())
    deliver_all()

    subscription.refresh_from_db()
    notification = Notification.objects.get()
    assert notification.status == DeliveryStatus.GAVE_UP
    assert not subscription.is_active
    assert "failed on every try" in subscription.disabled_reason
    assert mail.outbox[0].subject == f"[Django] Webhook endpoint disabled: {receiver.url}"
    # Kept: enabled again, later notifications of the endpoint are sent
    subscription.is_active = True
    subscription.save()
    receiver.fail_next = 0
    ship_order("B")
    deliver_all()
    assert verified(subscription, receiver.requests[-1])["data"]["transaction_id"] == "B"


def test_a_rotated_secret_signs_with_both_while_the_overlap_lasts(example_model, receiver):
    subscription = subscribe(url=receiver.url, kinds=["outcome"])
    old = subscription.secret
    subscription.previous_secret = old
    subscription.previous_secret_expires_at = timezone.now() + timedelta(hours=1)
    subscription.secret = WebhookSubscription._meta.get_field("secret").default()
    subscription.save()
    ship_order("A")

    deliver_all()

    received = receiver.requests[0]
    assert len(received.headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(received.body, received.headers)
    assert Webhook(subscription.secret).verify(received.body, received.headers)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hooks", "loopback"),
        ("http://[::1]:9/hooks", "loopback"),
        ("http://10.1.2.3/hooks", "private"),
        ("http://192.168.0.10/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://localhost:9/hooks", "loopback"),
        ("ftp://example.com/hooks", "only http and https"),
    ],
)
def test_unsafe_addresses_are_refused(url, why, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(sender.UnsafeUrl, match=why):
        sender.resolve_safe(url)
    assert "refused" in sender.post(url, b"{}", {}).error


def test_redirects_are_not_followed_and_bodies_are_capped(settings):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/redirect":
                self.send_response(307)
                self.send_header("Location", "http://169.254.169.254/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"x" * 100_000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        redirected = sender.post(base + "/redirect", b"{}", {})
        big = sender.post(base + "/big", b"{}", {})
    finally:
        server.shutdown()

    assert (redirected.status_code, redirected.ok) == (307, False)  # a redirect is a failure, not followed
    assert big.ok
    assert len(big.body_excerpt) <= 1000
