"""POST /api/v1/events as the official CloudEvents Python SDK sends events: binary content mode (the
attributes in ``ce-*`` headers, the body the data; what the SDKs send by default), structured mode,
and a batch. The SDK (``cloudevents`` 2.x) has no HTTP batch mode of its own, so the batch is its
structured events in one JSON array, as the HTTP binding's batched mode says."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import http
from cloudevents.core.v1.event import CloudEvent

from tracking.apply.applier import instances_apply_pending
from tracking.models import DeadLetter, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db


@pytest.fixture
def producer(example_model, api_client):
    return api_client(produce=True)


def cloud_event(event_id: str, event_type: str = "order.placed", data=None, **attributes) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": event_id,
            "type": event_type,
            "source": "shop",
            "subject": "ORD-CE",
            "modelid": "order-fulfilment",
            "time": datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
            **attributes,
        },
        data=data,
    )


def send(client, message: http.HTTPMessage):
    """POST the SDK's HTTP message as it is: its headers (Content-Type only when it sets one) and body."""
    headers = {name: value for name, value in message.headers.items() if name.lower() != "content-type"}
    content_type = message.headers.get("content-type", "")
    return client.generic("POST", "/api/v1/events", message.body, content_type=content_type, headers=headers)


def stored(event_id: str) -> dict:
    return InboxEvent.objects.get(event_id=event_id).envelope


def test_the_sdks_binary_mode_is_accepted(producer):
    message = http.to_binary_event(cloud_event("bin-1", data={"items": 2}))
    assert "ce-id" in message.headers
    assert "content-type" not in message.headers

    response = send(producer, message)

    assert response.status_code == 202, response.content
    assert response.json()["results"] == [{"index": 0, "status": "accepted", "event_id": "bin-1"}]
    assert stored("bin-1") == {
        "event_id": "bin-1",
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-CE",
        "event_type": "order.placed",
        "occurred_at": "2026-11-26T09:00:00Z",
        "source": "shop",
        "data": {"items": 2},
    }


def test_the_sdks_structured_mode_is_accepted_and_means_the_same(producer):
    binary = send(producer, http.to_binary_event(cloud_event("same-1", data={"items": 2})))

    response = send(producer, http.to_structured_event(cloud_event("same-1", data={"items": 2})))

    assert binary.status_code == response.status_code == 202
    # The same event in the other mode is a duplicate, not a conflict
    assert response.json()["results"][0]["status"] == "duplicate"
    response = send(producer, http.to_structured_event(cloud_event("other-1", data={"items": 2})))
    assert response.json()["results"][0]["status"] == "accepted"


def test_a_batch_of_the_sdks_structured_events_is_accepted(producer):
    events = [cloud_event("batch-1"), cloud_event("batch-2", "payment.captured")]
    body = b"[" + b",".join(http.to_structured_event(e).body for e in events) + b"]"

    response = producer.generic("POST", "/api/v1/events", body, content_type="application/cloudevents-batch+json")
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))

    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert ProcessInstance.objects.get(transaction_id="ORD-CE").state == "paid"


def test_binary_mode_attributes_are_percent_decoded_and_data_may_be_absent(producer):
    message = http.to_binary_event(cloud_event("id 1%é", subject="ORD/ü 1", source="billing system"))
    assert message.body == b""

    response = send(producer, message)

    assert response.status_code == 202, response.content
    envelope = stored("id 1%é")
    assert (envelope["transaction_id"], envelope["source"], envelope["data"]) == ("ORD/ü 1", "billing system", {})


def test_a_binary_mode_event_with_a_missing_attribute_is_rejected_naming_it(producer):
    message = http.to_binary_event(cloud_event("bin-bad", data={"items": 2}))
    del message.headers["ce-subject"]
    message.headers["ce-time"] = "yesterday"

    response = send(producer, message)

    assert response.status_code == 400
    answer = response.json()
    assert [(e["field"], e["reason"]) for e in answer["results"][0]["errors"]] == [
        ("subject", "required"),
        ("time", "must be an RFC 3339 time with a UTC offset"),
    ]
    assert answer["results"][0]["event_id"] == "bin-bad"
    # The dead letter keeps the event as it came, attributes and data together
    letter = DeadLetter.objects.get()
    assert json.loads(bytes(letter.raw)) == {
        "id": "bin-bad",
        "type": "order.placed",
        "source": "shop",
        "modelid": "order-fulfilment",
        "time": "yesterday",
        "specversion": "1.0",
        "data": {"items": 2},
    }


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b"hello"), ("application/json", b"{not json"), ("application/json", b"[1, 2]")],
    ids=["text", "not JSON", "a list"],
)
def test_binary_mode_data_that_is_not_a_json_object_is_rejected(producer, content_type, body):
    headers = dict(http.to_binary_event(cloud_event("bin-data")).headers)

    response = producer.generic("POST", "/api/v1/events", body, content_type=content_type, headers=headers)

    assert response.status_code == 400
    assert (response.json()["field"], response.json()["reason"]) == ("data", "must be a JSON object")
    assert not InboxEvent.objects.exists()


def test_ce_headers_beside_a_structured_body_are_not_read(producer):
    # The HTTP binding: a structured event is read from its body, whatever headers it carries
    message = http.to_structured_event(cloud_event("struct-1"))
    headers = {"ce-specversion": "1.0", "ce-id": "header-id"}

    response = producer.generic(
        "POST", "/api/v1/events", message.body, content_type="application/cloudevents+json", headers=headers
    )

    assert response.status_code == 202
    assert response.json()["results"][0]["event_id"] == "struct-1"
