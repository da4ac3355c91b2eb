"""The operator's admin lists and pages: labels rather than keys, titles, long values, customer links."""

import html
import re

import pytest
from django.urls import reverse

from tests.conftest import load_example_model
from tests.events import order_event
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, InboxEvent, ProcessInstance, ShardLease

pytestmark = pytest.mark.django_db


def send(*envelopes: dict) -> None:
    events_ingest(items=[RawEvent(e) for e in envelopes], source_kind="api")
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def result_rows(response) -> str:
    """The changelist's table of results, without the filters beside it."""
    return re.search(r'<table id="result_list">.*?</table>', response.content.decode(), flags=re.S).group(0)


def cells(response) -> list[str]:
    """The text of every cell of the results table, tags stripped."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<t[dh] class=\"field-[^\"]+\"[^>]*>(.*?)</t[dh]>", result_rows(response), flags=re.S)
    ]


def test_an_instance_is_titled_by_its_model_and_transaction(admin_client):
    load_example_model()
    send(order_event("e1", "SIM-123", "order.placed"))
    instance = ProcessInstance.objects.get()

    page = admin_client.get(reverse("admin:tracking_processinstance_change", args=[instance.pk])).content.decode()

    assert str(instance) == "order-fulfilment · SIM-123"
    assert re.search(r"<title>[^<]*order-fulfilment · SIM-123[^<]*</title>", page)
    assert f"{instance.model_id}/SIM-123" not in page


def test_the_instance_list_shows_labels_not_keys(admin_client):
    load_example_model()
    send(order_event("e1", "ORD-1", "order.placed"), order_event("e2", "ORD-1", "payment.failed"))

    response = admin_client.get(reverse("admin:tracking_processinstance_changelist"))

    # The model's name, the state's label, the status in words (the version is a filter and on the page).
    assert cells(response)[:4] == ["ORD-1", "Order fulfilment", "On hold", "In exception"]
    assert "on_hold" not in result_rows(response)
    # The model filter names the model too.
    assert "Order fulfilment" in re.search(r'id="changelist-filter".*', response.content.decode(), re.S).group(0)


def test_the_instance_page_and_move_form_name_states_by_label(admin_client):
    load_example_model()
    send(order_event("e1", "ORD-1", "order.placed"))
    instance = ProcessInstance.objects.get()

    page = admin_client.get(reverse("admin:tracking_processinstance_change", args=[instance.pk])).content.decode()
    move = admin_client.get(reverse("admin:tracking_processinstance_move", args=[instance.pk])).content.decode()

    assert "Order received (received)" in page
    assert '<option value="paid">Payment confirmed</option>' in move


def test_long_values_are_cut_in_lists_and_whole_on_their_pages(admin_client):
    load_example_model()
    long_id = "SIM-" + "7" * 150
    send(order_event("e-" + "x" * 120, long_id, "order.placed"))
    DeadLetter.objects.create(source_kind="file", source_ref="/data/" + "y" * 300, raw=b"{", reason="Bad " * 200)
    ShardLease.objects.create(stream="demo", shard_id="shardId-000000000000", owner="worker-" + "z" * 200)
    instance = ProcessInstance.objects.get()

    for name in ["processinstance", "inboxevent", "deadletter", "shardlease"]:
        response = admin_client.get(reverse(f"admin:tracking_{name}_changelist"))
        longest = max(len(text) for text in cells(response))
        assert longest <= 61, (name, longest)

    # The whole value is in the tooltip and on the object's own page.
    instances = admin_client.get(reverse("admin:tracking_processinstance_changelist")).content.decode()
    assert f'title="{long_id}"' in instances
    page = admin_client.get(reverse("admin:tracking_processinstance_change", args=[instance.pk])).content.decode()
    assert long_id in page
    event = InboxEvent.objects.get()
    event_page = admin_client.get(reverse("admin:tracking_inboxevent_change", args=[event.pk])).content.decode()
    assert event.event_id in event_page


def test_the_customer_link_follows_the_host_and_port_the_admin_is_served_on(admin_client, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.STATUSTRACKER_PUBLIC_URL = "http://localhost:8000"
    load_example_model()
    send(order_event("e1", "ORD-1", "order.placed"))
    instance = ProcessInstance.objects.get()

    page = admin_client.get(
        reverse("admin:tracking_processinstance_change", args=[instance.pk]), HTTP_HOST="127.0.0.1:8123"
    ).content.decode()

    urls = re.findall(r'value="(http[^"]+/track/[^"]+)"', page)
    assert urls
    assert all(url.startswith("http://127.0.0.1:8123/track/") for url in urls)
    assert "localhost:8000" not in page
