"""Webhooks in the admin: subscriptions made with controls (the model first, then its filters), the
secret shown once, rotated, a test event sent, an endpoint enabled again; the delivery log and manual
redelivery; and who may do what (viewers only look; every action is a POST behind CSRF)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from models_registry.models import StatusModel
from tests.tracking.notify.test_delivery import deliver_all
from tests.tracking.notify.test_outbox import ship_order, subscribe
from tracking.models import DeliveryAttempt, DeliveryStatus, Notification, WebhookSubscription

pytestmark = pytest.mark.django_db

ADD = reverse("admin:tracking_webhooksubscription_add")
LOG = reverse("admin:tracking_notification_changelist")


def change_url(subscription) -> str:
    return reverse("admin:tracking_webhooksubscription_change", args=[subscription.pk])


def logged_in(django_user_model, *permissions: str, superuser=False) -> Client:
    user = django_user_model.objects.create_user(
        username=f"u{django_user_model.objects.count()}", password=None, is_staff=True, is_superuser=superuser
    )
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(django_user_model, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    return logged_in(django_user_model, superuser=True)


@pytest.fixture
def viewer(django_user_model):
    return logged_in(django_user_model, "tracking.view_webhooksubscription", "tracking.view_notification")


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def form_data(**fields) -> dict:
    return {"url": "http://127.0.0.1:9/hooks", "description": "", **fields}


def test_a_subscription_is_added_with_controls_and_its_secret_shown_once(example_model, admin):
    model = StatusModel.objects.get(key="order-fulfilment")
    # Given the add page: the model first
    first = admin.get(ADD)
    assert first.status_code == 200
    assert b'<select name="model"' in first.content
    # then the model's filters as controls: kinds as checkboxes, states and milestones as multi-selects
    page = admin.get(ADD, {"model": model.pk}).content.decode()
    assert 'type="checkbox" name="kinds" value="milestone"' in page
    assert '<select name="states" size="7"' in page
    assert 'id="id_states" multiple' in page
    assert '<option value="on_hold">On hold</option>' in page
    assert '<option value="carrier">carrier</option>' in page  # a context field the model sets
    assert "<textarea" not in page  # no raw JSON boxes

    response = admin.post(
        f"{ADD}?model={model.pk}",
        form_data(kinds=["milestone", "outcome"], states=["shipped"], context_fields=["carrier"]),
        follow=True,
    )

    subscription = WebhookSubscription.objects.get()
    assert (subscription.model, subscription.kinds, subscription.states, subscription.context_fields) == (
        model,
        ["milestone", "outcome"],
        ["shipped"],
        ["carrier"],
    )
    assert subscription.created_by.is_superuser
    (message,) = [m for m in messages_of(response) if "secret" in m]
    assert subscription.secret in message
    assert "shown this once" in message
    # never again
    assert subscription.secret not in admin.get(change_url(subscription)).content.decode()
    assert (
        subscription.secret not in admin.get(reverse("admin:tracking_webhooksubscription_changelist")).content.decode()
    )


def test_problems_stand_on_their_fields(example_model, admin, settings):
    model = StatusModel.objects.get(key="order-fulfilment")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = admin.post(f"{ADD}?model={model.pk}", form_data(states=["lost"]))

    errors = response.context["adminform"].form.errors
    assert "This URL is refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address." in errors["url"]
    assert "lost" in errors["states"][0]
    assert not WebhookSubscription.objects.exists()


def test_an_edit_keeps_the_model_and_offers_keys_the_latest_version_lost(example_model, admin):
    subscription = subscribe(kinds=["transition"], states=["gone_state"])

    page = admin.get(change_url(subscription)).content.decode()
    assert "gone_state (not in the latest version)" in page
    assert '<select name="model"' not in page

    admin.post(change_url(subscription), form_data(kinds=["outcome"], milestones=["shipped"], description="ERP"))

    subscription.refresh_from_db()
    assert (subscription.kinds, subscription.states, subscription.milestones) == (["outcome"], [], ["shipped"])
    assert subscription.description == "ERP"


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_for_the_overlap(example_model, admin):
    subscription = subscribe()
    old = subscription.secret
    rotate = reverse("admin:tracking_webhook_rotate", args=[subscription.pk])
    assert 'name="overlap_hours" value="24.0"' in admin.get(rotate).content.decode()

    response = admin.post(rotate, {"overlap_hours": "2"}, follow=True)

    subscription.refresh_from_db()
    assert subscription.previous_secret == old
    assert subscription.secret != old
    assert any(subscription.secret in message for message in messages_of(response))
    assert "signs too until" in response.content.decode()


def test_a_test_event_is_sent_to_the_endpoint_and_its_answer_shown(example_model, admin, receiver):
    subscription = subscribe(url=receiver.url)

    response = admin.post(reverse("admin:tracking_webhook_test", args=[subscription.pk]), follow=True)

    (message,) = messages_of(response)
    assert "delivered: 204" in message
    payload = Webhook(subscription.secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "webhook.test"
    receiver.fail_next = 1
    response = admin.post(reverse("admin:tracking_webhook_test", args=[subscription.pk]), follow=True)
    assert "not delivered: answered 500" in messages_of(response)[0]
    assert admin.get(reverse("admin:tracking_webhook_test", args=[subscription.pk])).status_code == 405


def test_enabling_again_clears_the_disabling(example_model, admin):
    subscription = subscribe()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason="failed on every try"
    )
    page = admin.get(change_url(subscription)).content.decode()
    assert "Enable again" in page
    assert "failed on every try" in page

    admin.post(reverse("admin:tracking_webhook_enable", args=[subscription.pk]))

    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_at, subscription.disabled_reason) == (True, None, "")
    assert "Enable again" not in admin.get(change_url(subscription)).content.decode()


def test_the_delivery_log_shows_each_notifications_last_answer(example_model, admin, receiver):
    subscribe(url=receiver.url, kinds=["outcome", "milestone"])
    ship_order("A")
    receiver.fail_next = 1
    deliver_all()  # the first fails with a 500; the rest waits behind it

    page = admin.get(LOG).content.decode()
    assert "500" in page
    assert "pending" in page
    assert admin.get(LOG, {"answer": "error"}).context["cl"].result_count == 1
    assert admin.get(LOG, {"status": "pending"}).context["cl"].result_count == 5
    assert admin.get(LOG, {"q": "A"}).context["cl"].result_count == 5
    first = Notification.objects.order_by("id").first()
    detail = admin.get(reverse("admin:tracking_notification_change", args=[first.pk])).content.decode()
    assert first.webhook_id in detail
    assert "<td>worker</td><td>500</td>" in detail


def test_manual_redelivery_sends_now_and_never_unmarks_a_delivered_notification(example_model, admin, receiver):
    subscription = subscribe(url=receiver.url, kinds=["outcome", "milestone"])
    ship_order("A")
    deliver_all()
    delivered, given_up = Notification.objects.order_by("id")[:2]
    Notification.objects.filter(pk=given_up.pk).update(status=DeliveryStatus.GAVE_UP)
    sent_before = len(receiver.requests)

    response = admin.post(
        LOG,
        {"action": "redeliver_selected", "_selected_action": [delivered.pk, given_up.pk]},
        follow=True,
    )

    assert "Sent again: 2 delivered." in messages_of(response)
    assert len(receiver.requests) == sent_before + 2
    assert receiver.requests[-1].headers["webhook-id"] == given_up.webhook_id  # the same id: receivers dedupe
    assert Webhook(subscription.secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    delivered.refresh_from_db()
    given_up.refresh_from_db()
    assert delivered.status == given_up.status == DeliveryStatus.DELIVERED
    assert DeliveryAttempt.objects.filter(manual=True).count() == 2
    assert given_up.attempts == 1  # a manual try is not one of the schedule's


def test_viewers_see_but_cannot_act(example_model, viewer, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    subscription = subscribe(kinds=["outcome"])
    ship_order("A")

    page = viewer.get(change_url(subscription))
    assert page.status_code == 200
    assert b"Send test event" not in page.content
    assert b"Rotate secret" not in page.content
    assert viewer.get(LOG).status_code == 200
    assert b"redeliver_selected" not in viewer.get(LOG).content
    for name in ("rotate", "test", "enable"):
        assert viewer.post(reverse(f"admin:tracking_webhook_{name}", args=[subscription.pk])).status_code == 403
    assert viewer.get(ADD).status_code == 403
    assert viewer.post(change_url(subscription), form_data()).status_code == 403
    notification = Notification.objects.get()
    viewer.post(LOG, {"action": "redeliver_selected", "_selected_action": [notification.pk]})
    assert not DeliveryAttempt.objects.exists()


def test_the_permission_lets_a_non_superuser_manage(example_model, django_user_model, receiver):
    manager = logged_in(django_user_model, "tracking.manage_webhooks")
    subscription = subscribe(url=receiver.url)

    assert manager.get(change_url(subscription)).status_code == 200
    assert manager.post(reverse("admin:tracking_webhook_test", args=[subscription.pk])).status_code == 302
    assert len(receiver.requests) == 1
    assert manager.get(LOG).status_code == 200


def test_actions_need_the_csrf_token(example_model, django_user_model, receiver):
    user = django_user_model.objects.create_superuser("csrf-admin", "a@example.com", "unused")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    subscription = subscribe(url=receiver.url)

    for name in ("rotate", "test", "enable"):
        assert client.post(reverse(f"admin:tracking_webhook_{name}", args=[subscription.pk])).status_code == 403
    assert receiver.requests == []
