"""/api/v1/webhooks: staff or holders of tracking.manage_webhooks subscribe endpoints (the secret shown
once), read, change and delete them, rotate the secret with an overlap and send a test event to a
real endpoint on 127.0.0.1, whose signature the ``standardwebhooks`` package verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from tests.tracking.notify.test_delivery import deliver_all, verified
from tests.tracking.notify.test_outbox import ship_order, subscribe
from tracking.models import Notification, WebhookSubscription

pytestmark = pytest.mark.django_db

MANAGE = "tracking.manage_webhooks"


@pytest.fixture
def manager(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the endpoints are on 127.0.0.1
    return api_client(permissions=[MANAGE])


def create(client, **fields):
    body = {"url": "http://127.0.0.1:9/hooks", "model_id": "order-fulfilment", **fields}
    return client.post("/api/v1/webhooks", body, format="json")


def test_a_subscription_is_created_with_its_secret_shown_once(example_model, manager, receiver):
    # Given an endpoint; when it is subscribed to milestones and outcomes with two context fields
    response = create(
        manager,
        url=receiver.url,
        kinds=["milestone", "outcome"],
        states=["shipped", "delivered"],
        context_fields=["carrier"],
        description="ERP",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert {key: body[key] for key in ("model_id", "url", "kinds", "states", "milestones", "context_fields")} == {
        "model_id": "order-fulfilment",
        "url": receiver.url,
        "kinds": ["milestone", "outcome"],
        "states": ["shipped", "delivered"],
        "milestones": [],
        "context_fields": ["carrier"],
    }
    assert body["is_active"] is True
    assert body["created_by"] == manager.user.username
    subscription = WebhookSubscription.objects.get(pk=body["id"])
    assert subscription.secret == body["secret"]
    # then the secret is never shown again
    assert "secret" not in manager.get(f"/api/v1/webhooks/{body['id']}").json()
    assert all("secret" not in item for item in manager.get("/api/v1/webhooks").json()["results"])
    # and the changes it asked for arrive signed with it
    ship_order("A")
    deliver_all()
    assert [Webhook(body["secret"]).verify(r.body, r.headers)["data"]["to_state"] for r in receiver.requests] == [
        "shipped",  # the milestone (of the two states chosen)
        "delivered",  # the outcome
    ]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"model_id": "parcel"}, "model_id", "No model 'parcel'"),
        ({"kinds": ["shipped"]}, "kinds", "'shipped': not a kind of change (transition, milestone, outcome,"),
        ({"states": ["x" * 101]}, "states[0]", "no more than 100 characters"),
        ({"states": ["shipped", "lost"]}, "states", "'lost': not a state of the model's latest version (v1)"),
        ({"milestones": ["nowhere"]}, "milestones", "'nowhere': not a milestone"),
        ({"kinds": ["outcome", "outcome"]}, "kinds", "Each value may be given once"),
        ({"url": "ftp://example.com/x"}, "url", "This URL is refused: only http and https URLs"),
        ({"url": "not a url"}, "url", "Enter a valid URL"),
    ],
)
def test_what_the_model_does_not_know_is_refused_naming_the_field(example_model, manager, fields, field, words):
    response = create(manager, **fields)

    assert response.status_code == 400
    assert words in " ".join(response.json()["errors"][field])
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/hooks", "127.0.0.1, a loopback address"),
        ("http://10.0.0.7/hooks", "a private or reserved address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ],
)
def test_unsafe_urls_are_refused_saying_why(example_model, manager, settings, url, why):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = create(manager, url=url)

    assert response.status_code == 400
    assert why in response.json()["errors"]["url"][0]
    assert "This URL is refused" in response.json()["detail"]


def test_private_addresses_are_allowed_when_the_setting_says_so(example_model, manager, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    assert create(manager, url="http://10.0.0.7/hooks").status_code == 201


def test_a_model_without_a_published_version_is_refused(manager):
    from models_registry.models import StatusModel

    StatusModel.objects.create(key="draft-only")

    response = create(manager, model_id="draft-only")

    assert response.status_code == 400
    assert response.json()["errors"]["model_id"] == ["Model 'draft-only' has no published version yet."]


def test_who_may_manage_webhooks(example_model, api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    # staff, or the permission; not a reader, not a producer
    assert create(api_client(staff=True)).status_code == 201
    assert create(api_client(permissions=[MANAGE])).status_code == 201
    reader = api_client(read=True, produce=True)
    refused = create(reader)
    assert refused.status_code == 403
    assert "tracking.manage_webhooks" in refused.json()["detail"]
    subscription_id = WebhookSubscription.objects.first().pk
    for method, path in [
        ("get", "/api/v1/webhooks"),
        ("get", f"/api/v1/webhooks/{subscription_id}"),
        ("patch", f"/api/v1/webhooks/{subscription_id}"),
        ("delete", f"/api/v1/webhooks/{subscription_id}"),
        ("post", f"/api/v1/webhooks/{subscription_id}/rotate-secret"),
        ("post", f"/api/v1/webhooks/{subscription_id}/test"),
    ]:
        assert getattr(reader, method)(path, {}, format="json").status_code == 403, path
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/webhooks").status_code == 401


def test_list_filters_by_model_and_pages(example_model, manager):
    for index in range(3):
        create(manager, description=f"hook {index}")

    page = manager.get("/api/v1/webhooks?model_id=order-fulfilment&limit=2").json()

    assert page["count"] == 3
    assert [item["description"] for item in page["results"]] == ["hook 0", "hook 1"]
    assert manager.get("/api/v1/webhooks?model_id=parcel").json()["count"] == 0


def test_a_subscription_is_changed_checked_as_on_creation(example_model, manager):
    subscription_id = create(manager).json()["id"]

    changed = manager.patch(
        f"/api/v1/webhooks/{subscription_id}", {"milestones": ["shipped"], "description": "new"}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["milestones"], changed.json()["description"]) == (["shipped"], "new")
    assert changed.json()["url"] == "http://127.0.0.1:9/hooks"  # not sent, not changed

    refused = manager.patch(f"/api/v1/webhooks/{subscription_id}", {"states": ["lost"]}, format="json")
    assert refused.status_code == 400
    assert "states" in refused.json()["errors"]
    moved = manager.patch(f"/api/v1/webhooks/{subscription_id}", {"model_id": "other"}, format="json")
    assert moved.status_code == 400
    assert "cannot change" in moved.json()["errors"]["model_id"][0]
    assert manager.get("/api/v1/webhooks/999999").status_code == 404


def test_enabling_again_clears_the_disabling_and_the_kept_notifications_go(example_model, manager, receiver):
    subscription = subscribe(url=receiver.url, kinds=["outcome"])
    ship_order("A")
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason="failed on every try"
    )
    deliver_all()
    assert receiver.requests == []  # disabled: kept, not sent

    answer = manager.patch(f"/api/v1/webhooks/{subscription.pk}", {"is_active": True}, format="json").json()

    assert (answer["is_active"], answer["disabled_at"], answer["disabled_reason"]) == (True, None, "")
    deliver_all()
    assert verified(subscription, receiver.requests[0])["data"]["transaction_id"] == "A"
    paused = manager.patch(f"/api/v1/webhooks/{subscription.pk}", {"is_active": False}, format="json").json()
    assert paused["is_active"] is False
    assert paused["disabled_reason"] == f"Disabled by {manager.user.username}"


def test_a_subscription_is_deleted_with_its_notifications(example_model, manager):
    subscription = subscribe(kinds=["outcome"])
    ship_order("A")
    assert Notification.objects.count() == 1

    assert manager.delete(f"/api/v1/webhooks/{subscription.pk}").status_code == 204

    assert not WebhookSubscription.objects.exists()
    assert not Notification.objects.exists()


def test_a_rotated_secret_is_shown_once_and_the_old_one_signs_during_the_overlap(example_model, manager, receiver):
    created = create(manager, url=receiver.url, kinds=["outcome"]).json()

    rotated = manager.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", {}, format="json")

    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != created["secret"]
    expires = rotated.json()["previous_secret_expires_at"]
    assert timedelta(hours=23, minutes=59) < _parsed(expires) - timezone.now() <= timedelta(hours=24)
    ship_order("A")
    deliver_all()
    received = receiver.requests[0]
    assert Webhook(created["secret"]).verify(received.body, received.headers)
    assert Webhook(new).verify(received.body, received.headers)


def test_the_overlap_is_chosen_and_zero_ends_the_old_secret_at_once(example_model, manager):
    created = create(manager).json()
    path = f"/api/v1/webhooks/{created['id']}/rotate-secret"

    one_hour = manager.post(path, {"overlap_hours": 1}, format="json").json()
    assert _parsed(one_hour["previous_secret_expires_at"]) - timezone.now() <= timedelta(hours=1)
    at_once = manager.post(path, {"overlap_hours": 0}, format="json").json()
    assert at_once["previous_secret_expires_at"] is None
    subscription = WebhookSubscription.objects.get()
    assert (subscription.secret, subscription.previous_secret) == (at_once["secret"], "")
    too_long = manager.post(path, {"overlap_hours": 24 * 8}, format="json")
    assert too_long.status_code == 400
    assert "overlap_hours" in too_long.json()["errors"]


def test_a_test_event_is_sent_signed_and_the_answer_reported(example_model, manager, receiver):
    created = create(manager, url=receiver.url).json()

    answer = manager.post(f"/api/v1/webhooks/{created['id']}/test", format="json")

    assert answer.status_code == 200
    result = answer.json()
    assert (result["delivered"], result["status_code"], result["error"]) == (True, 204, "")
    received = receiver.requests[0]
    payload = Webhook(created["secret"]).verify(received.body, received.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["subscription_id"] == created["id"]
    assert received.headers["webhook-id"] == result["webhook_id"]
    assert not Notification.objects.exists()  # not a notification: nothing kept, nothing retried
    # an endpoint that fails is reported as it answered
    receiver.fail_next = 1
    failed = manager.post(f"/api/v1/webhooks/{created['id']}/test", format="json").json()
    assert (failed["delivered"], failed["status_code"]) == (False, 500)


def test_a_test_event_to_an_address_that_became_unsafe_is_not_sent(example_model, manager, settings):
    created = create(manager).json()
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    result = manager.post(f"/api/v1/webhooks/{created['id']}/test", format="json").json()

    assert result["delivered"] is False
    assert result["status_code"] is None
    assert "loopback" in result["error"]


def _parsed(moment: str):
    from django.utils.dateparse import parse_datetime

    return parse_datetime(moment)
