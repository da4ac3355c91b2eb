"""A failed event is visible in the admin, the API and ``/metrics``, and only operators may act on it."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db


def ingest(*envelopes: dict) -> None:
    events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")


def order_event(event_id: str, event_type: str) -> dict:
    return {"event_id": event_id, "model_id": "order-fulfilment", "transaction_id": "ORD-7", "event_type": event_type}


@pytest.fixture
def held_order(example_model):
    """ORD-7: placed, its payment failed on every try, its packing waiting behind it."""
    ingest(order_event("p1", "order.placed"))
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))
    ingest(order_event("p2", "payment.captured"), order_event("p3", "warehouse.packed"))
    InboxEvent.objects.filter(event_id="p2").update(
        status=EventStatus.FAILED, reason="RuntimeError: the handler broke", processed_at=timezone.now()
    )
    return ProcessInstance.objects.get(transaction_id="ORD-7")


def test_a_held_instance_applies_nothing_until_the_failed_event_is_dealt_with(held_order):
    report = instances_apply_pending(instance_ids=[held_order.pk])

    assert report.decided == 0
    assert InboxEvent.objects.get(event_id="p3").status == EventStatus.PENDING
    held_order.refresh_from_db()
    assert held_order.state == "received"


def test_the_instance_api_lists_its_failed_events(held_order, api_client):
    reader = api_client(read=True)

    answer = reader.get("/api/v1/instances/order-fulfilment/ORD-7").json()

    assert [(e["event_id"], e["event_type"], e["error"]) for e in answer["failed_events"]] == [
        ("p2", "payment.captured", "RuntimeError: the handler broke")
    ]


def test_metrics_count_failed_events(held_order, client, settings):
    settings.METRICS_TOKEN = "s3cret"

    text = client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).content.decode()

    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("statustracker_inbox_open_events", (("status", "failed"),))] == 1
    assert samples[("statustracker_inbox_open_events", (("status", "pending"),))] == 1


def test_the_inbox_admin_lists_failed_events_with_their_error(held_order, admin_client):
    response = admin_client.get("/admin/tracking/inboxevent/", {"status__exact": "failed"})

    assert response.status_code == 200
    assert b"RuntimeError: the handler broke" in response.content


def _changelist_action(client, action: str):
    pk = InboxEvent.objects.get(event_id="p2").pk
    return client.post(
        "/admin/tracking/inboxevent/", {"action": action, "_selected_action": [pk], "index": 0}, follow=True
    )


def test_an_operator_skips_a_failed_event_from_the_admin_and_the_instance_goes_on(
    held_order, client, django_user_model, django_capture_on_commit_callbacks
):
    operator = django_user_model.objects.create_user(username="olga", password="pw", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(codename__in=["view_inboxevent", "change_inboxevent"]))
    client.force_login(operator)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _changelist_action(client, "skip_failed")

    assert response.status_code == 200
    event = InboxEvent.objects.get(event_id="p2")
    assert (event.status, event.reason) == (EventStatus.SKIPPED, "skipped by olga")
    assert len(callbacks) == 1  # the instance is enqueued again once the skip commits
    instances_apply_pending(instance_ids=[held_order.pk])
    assert InboxEvent.objects.get(event_id="p3").status == EventStatus.PARKED  # packing needs a payment


def test_a_viewer_cannot_retry_or_skip(held_order, client, django_user_model):
    viewer = django_user_model.objects.create_user(username="vic", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_inboxevent"))
    client.force_login(viewer)

    page = client.get("/admin/tracking/inboxevent/")
    for action in ("retry_failed", "skip_failed"):
        _changelist_action(client, action)

    assert b"retry_failed" not in page.content
    assert InboxEvent.objects.get(event_id="p2").status == EventStatus.FAILED
