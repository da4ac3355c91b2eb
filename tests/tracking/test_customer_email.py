"""Customer email updates: the opt-in on the page, double opt-in, the update mails (combined within
the interval, in the customer's language), unsubscribing (the link and RFC 8058's one-click POST),
and the outbox written in the apply's transaction. Mails go to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from models_registry.models import StatusModel
from tests.conftest import load_example_model, wait_for
from tests.events import ingest, order_event
from tests.smtp_server import html_part, start_smtp_server, text_part
from tracking.apply.applier import instances_apply_pending
from tracking.models import CustomerEmailChange, CustomerEmailSettings, EmailSubscription, ProcessInstance
from tracking.notify.emails import email_outbox_write
from tracking.notify.outbox import AppliedSteps
from tracking.progress.email_messages import confirmation_email_send, customer_emails_deliver
from tracking.progress.links import instance_tracking_link_renew, instance_tracking_url
from tracking.progress.views import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db

ADDRESS = "Customer.Name@Example.COM"


@pytest.fixture(autouse=True)
def _empty_cache():
    # The models' email settings live in the shared cache; tests reuse primary keys.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def smtp(settings):
    mailbox, controller = start_smtp_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = mailbox.host, mailbox.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield mailbox
    controller.stop()


@pytest.fixture
def email_on():
    load_example_model()
    return CustomerEmailSettings.objects.create(model=StatusModel.objects.get(key="order-fulfilment"))


def apply_all() -> None:
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


_ids = iter(range(10**9))


def send(transaction_id: str, *event_types: str) -> ProcessInstance:
    ingest(*(order_event(f"ev-{next(_ids)}", transaction_id, event_type) for event_type in event_types))
    apply_all()
    return ProcessInstance.objects.get(transaction_id=transaction_id)


def page_path(instance) -> str:
    return urlsplit(instance_tracking_url(instance=instance)).path


def subscribe(client, instance, address=ADDRESS, **headers):
    form_path = page_path(instance) + "email"
    return client.post(form_path, {"email": address}, **headers)


def confirm_link(message) -> str:
    return re.search(r"http://\S+/track/email/confirm/\S+/", text_part(message)).group(0)


def unsubscribe_link(message) -> str:
    return re.sub(r"\s+", "", str(message["List-Unsubscribe"])).strip("<>")


def confirmed_subscription(client, instance, smtp, address=ADDRESS, **headers) -> EmailSubscription:
    subscribe(client, instance, address, **headers)
    subscription = EmailSubscription.objects.get(instance=instance, email__iexact=address)
    assert confirmation_email_send(subscription_id=subscription.pk, now=timezone.now())
    message = smtp.messages[-1]
    assert client.post(urlsplit(confirm_link(message)).path).status_code == 200
    subscription.refresh_from_db()
    assert subscription.confirmed_at is not None
    return subscription


def text(response) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


# --- the whole way, over SMTP ------------------------------------------------------------------------


def test_opt_in_confirmation_update_and_one_click_unsubscribe_over_smtp(client, smtp, email_on):
    instance = send("ORD-1", "order.placed", "payment.captured")

    # Given a customer who asks for updates on the page
    response = subscribe(client, instance)
    assert response.status_code == 200
    assert "Check your inbox" in text(response)
    subscription = EmailSubscription.objects.get()
    assert subscription.email == "Customer.Name@example.com"  # the domain is case-insensitive
    assert subscription.confirmed_at is None

    # then the confirmation mail arrives, with a link to confirm and the unsubscribe headers
    assert confirmation_email_send(subscription_id=subscription.pk, now=timezone.now())
    (confirmation,) = smtp.wait_for(1)
    assert confirmation["To"] == "Customer.Name@example.com"
    assert confirmation["Subject"] == "Confirm email updates about your request with Order fulfilment"
    assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_link(confirmation).startswith("http://localhost:8000/track/email/unsubscribe/")
    assert confirm_link(confirmation) in html_part(confirmation)

    # nothing is told before the address is confirmed
    send("ORD-1", "warehouse.packed")
    assert not CustomerEmailChange.objects.exists()

    # Opening the link asks; the button confirms (a scanner following links confirms nothing)
    confirm_path = urlsplit(confirm_link(confirmation)).path
    opened = client.get(confirm_path)
    assert "Confirm email updates" in text(opened)
    subscription.refresh_from_db()
    assert subscription.confirmed_at is None
    assert "Email updates are on" in text(client.post(confirm_path))

    # When the order moves on, one mail tells of it
    send("ORD-1", "carrier.picked_up")
    assert customer_emails_deliver(subscription_id=subscription.pk, now=timezone.now()) is None
    update = smtp.wait_for(2)[-1]
    assert update["Subject"] == "Order fulfilment: On its way"
    body = text_part(update)
    assert "Reached: On its way" in body
    assert instance_tracking_url(instance=instance) in body
    assert instance_tracking_url(instance=instance) in html_part(update)
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_link(update) in body
    assert not CustomerEmailChange.objects.exists()

    # The mail program's one-click POST (RFC 8058: no cookie, no CSRF token) unsubscribes
    csrf_client = client_class_with_csrf_checks()
    answer = csrf_client.post(
        urlsplit(unsubscribe_link(update)).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert not EmailSubscription.objects.exists()  # the address is gone with it
    send("ORD-1", "carrier.delivered")
    assert not CustomerEmailChange.objects.exists()
    assert len(smtp.messages) == 2


def client_class_with_csrf_checks():
    from django.test import Client

    return Client(enforce_csrf_checks=True)


def test_the_unsubscribe_link_asks_first_and_its_button_unsubscribes(client, smtp, email_on):
    instance = send("ORD-2", "order.placed")
    subscription = confirmed_subscription(client, instance, smtp)
    path = urlsplit(unsubscribe_link(smtp.messages[-1])).path

    asked = client.get(path)
    assert asked.status_code == 200
    assert "Stop email updates" in text(asked)
    assert EmailSubscription.objects.filter(pk=subscription.pk).exists()

    done = client.post(path)
    assert "Email updates are off" in text(done)
    assert not EmailSubscription.objects.exists()
    # Again, and after it is gone: the same answer, never an error
    assert "Email updates are off" in text(client.get(path))
    assert client.post(path).status_code == 200


def test_tampered_links_are_the_pages_plain_404(client, smtp, email_on):
    instance = send("ORD-3", "order.placed")
    confirmed_subscription(client, instance, smtp)
    unsubscribe = urlsplit(unsubscribe_link(smtp.messages[-1])).path
    tampered = unsubscribe[:-3] + ("a" if unsubscribe[-3] != "a" else "b") + unsubscribe[-2:]
    not_found = client.get("/track/no-such-link/")

    for path in [tampered, "/track/email/confirm/x:y/", "/track/email/unsubscribe/garbage/"]:
        response = client.get(path)
        assert response.status_code == 404
        assert response.content == not_found.content
    assert EmailSubscription.objects.count() == 1


# --- what is sent, and when -------------------------------------------------------------------------


def test_changes_within_the_interval_are_combined_into_one_mail(client, smtp, email_on, settings):
    settings.STATUSTRACKER_EMAIL_INTERVAL_SECONDS = 600
    instance = send("ORD-4", "order.placed")
    subscription = confirmed_subscription(client, instance, smtp)
    t0 = timezone.now()

    send("ORD-4", "payment.captured")
    assert customer_emails_deliver(subscription_id=subscription.pk, now=t0) is None
    assert len(smtp.wait_for(2)) == 2

    # Two more changes within the interval: the delivery waits out the rest of it
    send("ORD-4", "warehouse.packed")
    send("ORD-4", "carrier.picked_up")
    wait = customer_emails_deliver(subscription_id=subscription.pk, now=t0 + timedelta(seconds=60))
    assert wait == pytest.approx(540)
    assert len(smtp.messages) == 2

    # then sends one mail listing both, in order
    assert customer_emails_deliver(subscription_id=subscription.pk, now=t0 + timedelta(seconds=601)) is None
    combined = smtp.wait_for(3)[-1]
    body = text_part(combined)
    assert body.index("Reached: Packed") < body.index("Reached: On its way")
    assert combined["Subject"] == "Order fulfilment: On its way"
    assert customer_emails_deliver(subscription_id=subscription.pk, now=t0 + timedelta(hours=1)) is None
    assert len(smtp.messages) == 3  # nothing left to tell


def test_exceptions_and_the_end_are_told_and_the_settings_choose(client, smtp, email_on):
    instance = send("ORD-5", "order.placed")
    subscription = confirmed_subscription(client, instance, smtp)

    send("ORD-5", "payment.failed")
    send("ORD-5", "payment.captured")
    assert [c.kind for c in CustomerEmailChange.objects.order_by("id")] == [
        "exception_entered",
        "milestone",
        "exception_left",
    ]
    customer_emails_deliver(subscription_id=subscription.pk, now=timezone.now())
    body = text_part(smtp.wait_for(2)[-1])
    assert "Needs attention: On hold" in body
    assert "Back on track: Payment confirmed" in body

    # Milestones off: only the end is told, once (not as a milestone too)
    email_on.milestones = False
    email_on.save()
    cache.clear()
    send("ORD-5", "warehouse.packed", "carrier.picked_up", "carrier.delivered")
    assert [c.kind for c in CustomerEmailChange.objects.all()] == ["outcome"]
    customer_emails_deliver(subscription_id=subscription.pk, now=timezone.now() + timedelta(hours=1))
    done = smtp.wait_for(3)[-1]
    assert "Completed: Delivered" in text_part(done)
    assert done["Subject"] == "Order fulfilment: Delivered"


def test_mails_are_in_the_language_the_page_was_read_in(client, smtp, email_on):
    instance = send("ORD-6", "order.placed")

    response = subscribe(client, instance, HTTP_ACCEPT_LANGUAGE="de")
    assert "Posteingang" in text(response)
    subscription = EmailSubscription.objects.get()
    assert subscription.language == "de"
    confirmation_email_send(subscription_id=subscription.pk, now=timezone.now())
    confirmation = smtp.wait_for(1)[0]
    assert (
        confirmation["Subject"].strip() == "E-Mail-Benachrichtigungen zu Ihrer Anfrage bei Order fulfilment bestätigen"
    )
    assert "bestätigen" in text_part(confirmation)
    client.post(urlsplit(confirm_link(confirmation)).path, HTTP_ACCEPT_LANGUAGE="de")

    send("ORD-6", "payment.captured")
    customer_emails_deliver(subscription_id=subscription.pk, now=timezone.now())
    update = smtp.wait_for(2)[-1]
    body = text_part(update)
    assert "Erreicht: Payment confirmed" in body  # model labels are the business's own words
    assert "Diese E-Mails abbestellen" in body
    assert 'lang="de"' in html_part(update)


def test_a_rolled_back_apply_leaves_no_mail(client, smtp, email_on):
    instance = send("ORD-7", "order.placed")
    confirmed_subscription(client, instance, smtp)
    ingest(order_event("rb-1", "ORD-7", "payment.captured"))

    written = []

    def apply_then_fail():
        with transaction.atomic():
            apply_all()
            written.append(CustomerEmailChange.objects.count())  # in the apply's transaction
            raise RuntimeError("the apply's transaction fails after the outbox was written")

    with pytest.raises(RuntimeError):
        apply_then_fail()

    assert written == [1]
    assert not CustomerEmailChange.objects.exists()
    apply_all()
    assert CustomerEmailChange.objects.count() == 1


def test_the_outbox_costs_no_query_without_email_and_one_with_it(client, smtp):
    load_example_model()
    instance = send("ORD-8", "order.placed")
    applied = [AppliedSteps(instance=instance, version_id=instance.version_id, context_before={}, steps=[], events={})]
    email_outbox_write(applied, now=timezone.now())  # fills the shared cache

    with CaptureQueriesContext(connection) as no_model:
        email_outbox_write(applied, now=timezone.now())
    CustomerEmailSettings.objects.create(model=StatusModel.objects.get(key="order-fulfilment"))
    cache.clear()
    email_outbox_write(applied, now=timezone.now())
    with CaptureQueriesContext(connection) as with_model:
        email_outbox_write(applied * 50, now=timezone.now())

    assert len(no_model) == 0
    assert len(with_model) == 1
    assert "tracking_emailsubscription" in with_model[0]["sql"].lower()


def test_a_confirmed_address_asking_again_gets_no_second_mail_and_the_same_answer(client, smtp, email_on):
    instance = send("ORD-9", "order.placed")
    confirmed_subscription(client, instance, smtp)
    first_answer = text(subscribe(client, instance, "someone-new@example.com"))

    again = subscribe(client, instance, ADDRESS.lower())

    assert text(again) == first_answer
    assert EmailSubscription.objects.filter(instance=instance).count() == 2
    assert EmailSubscription.objects.get(email__iexact=ADDRESS).confirmed_at is not None


def test_revoking_the_customer_links_ends_their_subscriptions(client, smtp, email_on):
    instance = send("ORD-10", "order.placed")
    confirmed_subscription(client, instance, smtp)

    instance_tracking_link_renew(instance_id=instance.pk)

    assert not EmailSubscription.objects.exists()


# --- the page, its form and privacy -------------------------------------------------------------------


def test_the_page_offers_email_only_when_the_model_does(client):
    load_example_model()
    instance = send("ORD-11", "order.placed")
    assert "Email me about changes" not in text(client.get(page_path(instance)))
    assert client.get(page_path(instance) + "email").status_code == 404

    CustomerEmailSettings.objects.create(model=StatusModel.objects.get(key="order-fulfilment"))
    cache.clear()
    page = client.get(page_path(instance))

    assert f'href="{page_path(instance)}email"' in page.content.decode()
    assert "Email me about changes" in text(page)
    assert client.get(page_path(instance) + "email").status_code == 200


def test_the_page_keeps_its_policy_and_the_form_page_allows_only_posting_here(client, email_on):
    instance = send("ORD-12", "order.placed")

    page = client.get(page_path(instance))
    form = client.get(page_path(instance) + "email")

    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "form-action 'none'" in page.headers["Content-Security-Policy"]
    assert "<form" not in page.content.decode()
    assert form.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY.replace(
        "form-action 'none'", "form-action 'self'"
    )
    for header in ("Referrer-Policy", "Cache-Control", "X-Robots-Tag"):
        assert form.headers[header] == page.headers[header]
    assert not form.cookies  # no CSRF cookie: the signed link is the credential
    content = form.content.decode()
    assert '<form class="email-form" method="post"' in content
    assert 'type="email"' in content
    assert "<style" not in content
    assert " style=" not in content
    assert not re.search(r"\son[a-z]+=", content)
    assert all('src="/static/' in attrs for attrs in re.findall(r"<script([^>]*)>", content))


def test_an_invalid_address_is_said_on_the_field(client, email_on):
    instance = send("ORD-13", "order.placed")

    response = subscribe(client, instance, "not an address")

    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert "Enter a valid email address." in text(response)
    assert not EmailSubscription.objects.exists()


def test_addresses_are_never_shown_on_the_customer_pages(client, smtp, email_on):
    instance = send("ORD-14", "order.placed")
    confirmed_subscription(client, instance, smtp)

    pages = [
        client.get(page_path(instance)),
        client.get(page_path(instance) + "email"),
        subscribe(client, instance),
        client.get(urlsplit(confirm_link(smtp.messages[-1])).path),
        client.get(urlsplit(unsubscribe_link(smtp.messages[-1])).path),
    ]
    for response in pages:
        assert response.status_code == 200
        assert "example.com" not in response.content.decode().lower()
        assert "customer.name" not in response.content.decode().lower()


def test_the_api_shows_addresses_to_staff_only(client, smtp, email_on, api_client):
    instance = send("ORD-15", "order.placed")
    confirmed_subscription(client, instance, smtp)
    url = "/api/v1/instances/order-fulfilment/ORD-15"

    reader = api_client(read=True).get(url).json()
    staff = api_client(read=True, staff=True).get(url).json()

    assert "email_subscriptions" not in reader
    assert "example.com" not in str(reader).lower()
    assert staff["email_subscriptions"] == [
        {
            "email": "Customer.Name@example.com",
            "language": "en",
            "confirmed": True,
            "created_at": staff["email_subscriptions"][0]["created_at"],
            "last_sent_at": None,
        }
    ]


def test_the_sweep_forgets_unconfirmed_and_finished_addresses(client, smtp, email_on, settings):
    from tracking.notify.emails import email_subscriptions_expire

    settings.STATUSTRACKER_EMAIL_RETENTION_DAYS = 30
    open_order = send("ORD-16", "order.placed")
    done_order = send("ORD-17", "order.placed")
    confirmed_subscription(client, open_order, smtp)
    confirmed_subscription(client, done_order, smtp)
    subscribe(client, open_order, "late@example.com")
    send("ORD-17", "payment.captured", "warehouse.packed", "carrier.picked_up", "carrier.delivered")

    email_subscriptions_expire(now=timezone.now() + timedelta(days=8))
    assert sorted(EmailSubscription.objects.values_list("email", flat=True)) == [
        "Customer.Name@example.com",
        "Customer.Name@example.com",
    ]  # the unconfirmed one is gone once its link expired
    email_subscriptions_expire(now=timezone.now() + timedelta(days=31))
    assert list(EmailSubscription.objects.values_list("instance__transaction_id", flat=True)) == ["ORD-16"]


# --- through a real worker ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_real_worker_sends_the_confirmation_and_the_update(start_worker, smtp, client, settings):
    load_example_model()
    CustomerEmailSettings.objects.create(model=StatusModel.objects.get(key="order-fulfilment"))
    cache.clear()
    start_worker(
        extra_env={
            "EMAIL_HOST": smtp.host,
            "EMAIL_PORT": str(smtp.port),
            "EMAIL_USE_TLS": "false",
            "STATUSTRACKER_PUBLIC_URL": "http://localhost:8000",
        }
    )
    ingest(order_event("w-1", "ORD-W", "order.placed"))
    instance = wait_for(
        lambda: ProcessInstance.objects.filter(transaction_id="ORD-W", version__isnull=False).first(),
        message="the worker applies the first event",
    )

    subscribe(client, instance)  # its transaction commits: the confirmation task is queued
    confirmation = smtp.wait_for(1)[0]
    client.post(urlsplit(confirm_link(confirmation)).path)
    ingest(order_event("w-2", "ORD-W", "payment.captured"))

    update = smtp.wait_for(2)[-1]
    assert "Reached: Payment confirmed" in text_part(update)
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    wait_for(lambda: not CustomerEmailChange.objects.exists(), message="the told change is done with")


def test_a_delay_is_told_through_the_same_outbox(client, smtp, email_on):
    from tracking.notify.changes import Change
    from tracking.notify.emails import email_changes_write
    from tracking.notify.outbox import InstanceChange

    instance = send("ORD-18", "order.placed", "payment.captured")
    subscription = confirmed_subscription(client, instance, smtp)

    # What the delay check (tracking.notify.delays) hands over, in its transaction
    email_changes_write([InstanceChange(instance, Change("delayed", "paid", "paid"), {}, {})], now=timezone.now())

    customer_emails_deliver(subscription_id=subscription.pk, now=timezone.now())
    assert "Taking longer than expected: Payment confirmed" in text_part(smtp.wait_for(2)[-1])
