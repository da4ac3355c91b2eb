"""The example stream through the whole service, applied by a real Celery worker process.

examples/README.md says what the stream must come to; the spec replay (tests/reference_replay.py)
says it event by event. Both are checked, through ``ingest_events`` and through the REST API.
"""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from api_access.services import token_create
from tests.conftest import EXAMPLES, load_example_model, wait_for
from tests.reference_replay import replay
from tests.service_state import expected, nothing_pending, observed
from tracking.models import DeadLetter, EventStatus, InboxEvent, ProcessInstance, SourceKind

pytestmark = [pytest.mark.integration]

STREAM = EXAMPLES / "order-fulfilment-events.jsonl"
LINES = STREAM.read_bytes().splitlines()
UNKNOWN_MODEL_LINE = 9  # x-1


def reference() -> dict:
    """The spec replay of the stream, on the envelopes as the service stored them (native form,
    defaults filled); a line that was not stored, as it came."""
    document = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())
    envelopes = []
    for raw in LINES:
        value = json.loads(raw)
        stored = InboxEvent.objects.filter(event_id=value.get("event_id") or value.get("id")).first()
        envelopes.append(stored.envelope if stored else value)
    return replay(document, envelopes)


def assert_example_end_state(*, source_kind: str, version) -> None:
    # The README's end states and context
    instances = {i.transaction_id: i for i in ProcessInstance.objects.all()}
    assert {t: (i.state, i.status) for t, i in instances.items()} == {
        "ORD-1001": ("shipped", "active"),
        "ORD-1002": ("packed", "active"),
        "ORD-1003": ("on_hold", "in_exception"),
    }
    assert instances["ORD-1001"].context == {"carrier": "DHL", "tracking_number": "JD0142"}
    assert {i.version_id for i in instances.values()} == {version.pk}

    # Outcomes: every accepted event stored once; bill-1's second delivery counted, not stored
    events = {e.event_id: e for e in InboxEvent.objects.all()}
    assert Counter(e.status for e in events.values()) == {EventStatus.APPLIED: 9, EventStatus.IGNORED: 1}
    assert events["shop-4"].status == EventStatus.IGNORED
    assert {e.event_id: e.duplicate_count for e in events.values() if e.duplicate_count} == {"bill-1": 1}
    assert {e.source_kind for e in events.values()} == {source_kind}

    # wms-9 arrived before ORD-1002 existed: parked, then applied after the payment
    assert events["wms-9"].pk < events["shop-2"].pk < events["bill-2"].pk
    assert list(instances["ORD-1002"].history.order_by("pk").values_list("event__event_id", "to_state")) == [
        ("shop-2", "received"),
        ("bill-2", "paid"),
        ("wms-9", "packed"),
    ]

    # x-1 names an unknown model: a dead letter with its raw bytes and the reason
    letter = DeadLetter.objects.get()
    assert bytes(letter.raw) == LINES[UNKNOWN_MODEL_LINE - 1]
    assert (letter.source_kind, letter.field) == (source_kind, "model_id")
    assert "unknown model 'no-such-model'" in letter.reason

    # And event by event, history included, what the spec replay says
    assert observed("order-fulfilment") == expected(reference())


def test_example_stream_through_ingest_events(start_worker):
    version = load_example_model()
    start_worker()

    out, err = StringIO(), StringIO()
    call_command("ingest_events", str(STREAM), stdout=out, stderr=err)

    assert out.getvalue().strip() == "10 accepted, 1 duplicate, 1 rejected"
    assert f"{STREAM}:{UNKNOWN_MODEL_LINE}: rejected (model_id): unknown model 'no-such-model'" in err.getvalue()
    wait_for(nothing_pending, message="the worker to apply the stream")
    assert_example_end_state(source_kind=SourceKind.FILE, version=version)
    assert DeadLetter.objects.get().source_ref == f"{STREAM}:{UNKNOWN_MODEL_LINE}"


def test_example_stream_through_ingest_events_one_event_per_task(start_worker):
    """Each line its own batch and task: the worker sees the events one at a time."""
    version = load_example_model()
    start_worker()

    call_command("ingest_events", str(STREAM), "--batch-size", "1", stdout=StringIO(), stderr=StringIO())

    wait_for(nothing_pending, message="the worker to apply the stream")
    assert_example_end_state(source_kind=SourceKind.FILE, version=version)


def producer_client() -> APIClient:
    user = get_user_model().objects.create_user(username="producer", password=None)
    _, key = token_create(name="pipeline test", user=user, can_produce=True, can_read=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_example_stream_through_the_api(start_worker):
    version = load_example_model()
    client = producer_client()
    start_worker()

    # Given the first four lines posted as one batch: shop-1, bill-1 twice, wms-9
    response = client.post("/api/v1/events", {"events": [json.loads(raw) for raw in LINES[:4]]}, format="json")
    assert response.status_code == 202, response.content
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted", "duplicate", "accepted"]
    wait_for(nothing_pending, message="the worker to apply the first batch")

    # Then wms-9, for an order that does not exist yet, waits parked
    assert InboxEvent.objects.get(event_id="wms-9").status == EventStatus.PARKED
    assert ProcessInstance.objects.get(transaction_id="ORD-1001").state == "paid"
    assert ProcessInstance.objects.get(transaction_id="ORD-1002").state == ""

    # When the rest arrive one request each, the CloudEvent with its own media type
    for number, raw in enumerate(LINES[4:], start=5):
        content_type = "application/cloudevents+json" if b"specversion" in raw else "application/json"
        response = client.generic("POST", "/api/v1/events", raw, content_type=content_type)
        if number == UNKNOWN_MODEL_LINE:
            assert response.status_code == 400, response.content
            assert (response.json()["field"], response.json()["reason"]) == (
                "model_id",
                "unknown model 'no-such-model'",
            )
        else:
            assert response.status_code == 202, response.content
            assert [r["status"] for r in response.json()["results"]] == ["accepted"]

    # Then the end state is the README's, as through the file
    wait_for(nothing_pending, message="the worker to apply the stream")
    assert_example_end_state(source_kind=SourceKind.API, version=version)
