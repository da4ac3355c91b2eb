"""make run's webhook receiver (/dev/webhooks/): a real signed delivery from the product's sender is
verified with the subscription's secret and listed on the staff page; a bad signature gets 401; with
DEBUG off it does not exist; bootstrap_local subscribes it to the simulated model once."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.test import Client

from models_registry.models import StatusModel
from tests.tracking.notify.test_outbox import ship_order
from tracking.models import DeliveryAttempt, DeliveryStatus, Notification, WebhookSubscription
from tracking.notify import dev_receiver
from tracking.notify.delivery import deliver_pending
from tracking.notify.signing import signature_headers


@pytest.fixture
def receiver_on(settings):
    settings.DEBUG = True
    settings.STATUSTRACKER_DEV_RECEIVER = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    dev_receiver.received_clear()
    yield
    dev_receiver.received_clear()


@pytest.fixture
def staff_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    return client


def receiver_subscription(base_url: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        model=StatusModel.objects.get(key="order-fulfilment"),
        url=base_url + dev_receiver.RECEIVE_PATH,
        kinds=["transition"],
        description=dev_receiver.SUBSCRIPTION_DESCRIPTION,
    )


@pytest.mark.django_db(transaction=True)
def test_real_deliveries_are_verified_and_listed_newest_first(example_model, receiver_on, live_server, staff_client):
    subscription = receiver_subscription(live_server.url)
    ship_order("A")

    # When the workers' code delivers the order's notifications over HTTP to the live server
    for instance_id in Notification.objects.values_list("instance_id", flat=True).distinct():
        deliver_pending(subscription_id=subscription.pk, instance_id=instance_id)

    # Then the receiver verified each and answered 204, and the page lists them newest first
    assert set(Notification.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert set(DeliveryAttempt.objects.values_list("status_code", flat=True)) == {204}
    received = dev_receiver.received_deliveries()
    sent_ids = [n.webhook_id for n in Notification.objects.order_by("-id")]
    assert [r["webhook_id"] for r in received] == sent_ids
    assert all(r["verified"] for r in received)
    assert [(r["from_state"], r["to_state"]) for r in received] == [
        ("shipped", "delivered"), ("packed", "shipped"), ("paid", "packed"), ("received", "paid"), ("", "received"),
    ]  # fmt: skip
    page = staff_client.get("/dev/webhooks/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index(sent_ids[0]) < text.index(sent_ids[-1])
    assert "shipped → delivered" in text
    assert "(created) → received" in text
    assert text.count("Signature verified") == 5
    assert "admin/base_site.html" in [t.name for t in page.templates]


@pytest.mark.django_db
def test_a_bad_signature_is_refused_with_401(example_model, receiver_on, client, caplog):
    subscription = receiver_subscription("http://testserver")
    body = json.dumps({"type": "instance.transition", "data": {"transaction_id": "A", "to_state": "paid"}}).encode()
    headers = signature_headers([subscription.secret], "msg_1", int(time.time()), body)

    # A body other than the one signed, and a signature with another secret
    tampered = client.post(dev_receiver.RECEIVE_PATH, body + b" ", content_type="application/json", headers=headers)
    other = signature_headers(["whsec_" + "A" * 32], "msg_2", int(time.time()), body)
    foreign = client.post(dev_receiver.RECEIVE_PATH, body, content_type="application/json", headers=other)
    stale = signature_headers([subscription.secret], "msg_3", int(time.time()) - 3600, body)
    replayed = client.post(dev_receiver.RECEIVE_PATH, body, content_type="application/json", headers=stale)
    good = client.post(dev_receiver.RECEIVE_PATH, body, content_type="application/json", headers=headers)

    assert [tampered.status_code, foreign.status_code, replayed.status_code, good.status_code] == [401, 401, 401, 204]
    assert [(r["webhook_id"], r["verified"]) for r in dev_receiver.received_deliveries()] == [
        ("msg_1", True), ("msg_3", False), ("msg_2", False), ("msg_1", False),
    ]  # fmt: skip
    assert "more than 5 minutes" in dev_receiver.received_deliveries()[1]["problem"]
    assert "webhook received: msg_1 instance.transition A (created) -> paid, signature verified" in caplog.text


@pytest.mark.django_db
def test_with_debug_off_the_receiver_and_its_page_do_not_exist(example_model, receiver_on, settings, staff_client):
    settings.DEBUG = False
    subscription = receiver_subscription("http://testserver")
    body = b'{"type": "instance.transition", "data": {}}'
    headers = signature_headers([subscription.secret], "msg_1", int(time.time()), body)

    posted = staff_client.post(dev_receiver.RECEIVE_PATH, body, content_type="application/json", headers=headers)

    assert posted.status_code == 404
    assert staff_client.get("/dev/webhooks/").status_code == 404
    assert dev_receiver.received_deliveries() == []
    settings.DEBUG, settings.STATUSTRACKER_DEV_RECEIVER = True, False  # the flag itself is off by default
    assert staff_client.get("/dev/webhooks/").status_code == 404


@pytest.mark.django_db
def test_the_page_is_for_staff_only(receiver_on, client):
    answer = client.get("/dev/webhooks/")
    assert answer.status_code == 302
    assert "/admin/login/" in answer["Location"]


@pytest.mark.django_db
def test_bootstrap_subscribes_the_receiver_once_and_follows_the_port(receiver_on, settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("PORT", "8125")

    call_command("bootstrap_local")
    call_command("bootstrap_local")
    monkeypatch.setenv("PORT", "8126")
    call_command("bootstrap_local")

    subscription = WebhookSubscription.objects.get()
    assert subscription.model.key == "order-fulfilment"
    assert subscription.url == "http://127.0.0.1:8126/dev/webhooks/receive"
    assert subscription.kinds == ["transition"]
    assert subscription.is_active


@pytest.mark.django_db
def test_bootstrap_makes_no_subscription_without_the_receiver(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.STATUSTRACKER_DEV_RECEIVER = False

    call_command("bootstrap_local")

    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_bootstrap_lets_the_example_orders_ask_for_email_when_mails_are_files(settings, tmp_path):
    from tracking.notify.email_models import CustomerEmailSettings
    from tracking.notify.emails import model_offers_email

    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    call_command("bootstrap_local")
    CustomerEmailSettings.objects.filter(model__key="order-fulfilment").update(delays=False)  # an operator's choice
    call_command("bootstrap_local")

    settings_row = CustomerEmailSettings.objects.get()
    assert settings_row.model.key == "order-fulfilment"
    assert not settings_row.delays  # kept
    assert model_offers_email(model_id=settings_row.model_id)


@pytest.mark.django_db
def test_bootstrap_offers_no_email_when_mail_really_goes_out(settings, tmp_path):
    from tracking.notify.email_models import CustomerEmailSettings

    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    call_command("bootstrap_local")

    assert not CustomerEmailSettings.objects.exists()
