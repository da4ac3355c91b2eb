"""/api/v1/dead-letters: operators list, read, replay and discard dead letters; each needs a permission
of the token's user."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import load_example_model
from tests.events import order_event
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, InboxEvent

pytestmark = pytest.mark.django_db

VIEW, REPLAY, DISCARD = "tracking.view_deadletter", "tracking.replay_deadletter", "tracking.discard_deadletter"


def refused(payload, ref="orders.jsonl:1", kind="file") -> DeadLetter:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    events_ingest(items=[RawEvent(raw, source_ref=ref)], source_kind=kind)
    return DeadLetter.objects.latest("pk")


@pytest.fixture
def operator(api_client):
    return api_client(permissions=(VIEW, REPLAY, DISCARD), username="ops")


def test_the_list_is_paginated_and_filtered(operator):
    unknown = refused(order_event("e1", "ORD-1", "order.placed"))
    load_example_model()
    bad_time = refused({**order_event("e2", "ORD-2", "order.placed"), "occurred_at": "yesterday"}, kind="kinesis")

    everything = operator.get("/api/v1/dead-letters").json()
    assert everything["count"] == 2
    assert [r["id"] for r in everything["results"]] == [bad_time.pk, unknown.pk]  # newest first
    first = everything["results"][1]
    assert first == {
        "id": unknown.pk,
        "received_at": first["received_at"],
        "source_kind": "file",
        "source_ref": "orders.jsonl:1",
        "field": "model_id",
        "reason": "unknown model 'order-fulfilment'",
        "status": "open",
        "replay_of": None,
        "replay": None,
        "discard": None,
    }

    def ids(query: str) -> list[int]:
        response = operator.get(f"/api/v1/dead-letters?{query}")
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids("reason=unknown_model") == [unknown.pk]
    assert ids("source_kind=kinesis") == [bad_time.pk]
    assert ids("field=occurred_at") == [bad_time.pk]
    assert ids("status=discarded") == []
    assert ids("limit=1&offset=1") == [unknown.pk]
    assert ids(f"received_since={first['received_at'].replace('+', '%2B')}") == [bad_time.pk, unknown.pk]
    response = operator.get("/api/v1/dead-letters?status=closed")
    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_the_detail_has_the_raw_input_as_text_and_base64(operator):
    text = refused(b'{"event_id": "\xc3\xa9"')
    binary = refused(b"\xff\x00")

    body = operator.get(f"/api/v1/dead-letters/{text.pk}").json()
    assert body["raw_text"] == '{"event_id": "é"'
    assert base64.b64decode(body["raw_base64"]) == b'{"event_id": "\xc3\xa9"'
    assert body["raw_size"] == 17

    body = operator.get(f"/api/v1/dead-letters/{binary.pk}").json()
    assert (body["raw_text"], base64.b64decode(body["raw_base64"])) == (None, b"\xff\x00")
    assert operator.get("/api/v1/dead-letters/999999").status_code == 404


def test_replay_as_received_after_the_model_is_published(operator):
    letter = refused(order_event("e1", "ORD-1", "order.placed"))
    load_example_model()

    response = operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "dead_letter_id": letter.pk,
        "outcome": "accepted",
        "event_id": "e1",
        "warning": "",
        "errors": {},
        "new_dead_letter_id": None,
    }
    detail = operator.get(f"/api/v1/dead-letters/{letter.pk}").json()
    assert detail["status"] == "replayed"
    assert detail["replay"]["replayed_by"] == "ops"
    assert detail["replay"]["edited"] is False
    assert operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {}, format="json").status_code == 409


def test_replay_with_an_edited_body_and_a_duplicate(operator):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    fixed = {**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"}
    events_ingest(items=[RawEvent(fixed)], source_kind="api")  # the producer already sent it again

    response = operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {"body": fixed}, format="json")

    assert response.json()["outcome"] == "duplicate"
    assert response.json()["event_id"] == "e1"
    detail = operator.get(f"/api/v1/dead-letters/{letter.pk}").json()
    assert json.loads(base64.b64decode(detail["replayed_body_base64"])) == fixed
    assert InboxEvent.objects.get().duplicate_count == 1


def test_a_replay_still_invalid_is_a_400_by_field_and_the_letter_stays_open(operator):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})

    as_received = operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {}, format="json")
    edit = {**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z", "model_id": "nope"}
    edited = operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {"body": edit}, format="json")
    not_an_object = operator.post(f"/api/v1/dead-letters/{letter.pk}/replay", {"body": [1]}, format="json")

    assert as_received.status_code == 400
    assert as_received.json()["errors"] == {"event.occurred_at": ["must be an RFC 3339 time with a UTC offset"]}
    assert edited.json()["errors"] == {"event.model_id": ["unknown model 'nope'"]}
    assert not_an_object.json()["errors"] == {"event": ["an event must be a JSON object"]}
    letter.refresh_from_db()
    assert letter.is_open
    assert DeadLetter.objects.count() == 1


def test_discard_needs_a_reason(operator):
    letter = refused(order_event("e1", "ORD-1", "order.placed"))

    assert operator.post(f"/api/v1/dead-letters/{letter.pk}/discard", {}, format="json").status_code == 400
    response = operator.post(f"/api/v1/dead-letters/{letter.pk}/discard", {"reason": "load test"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "discarded"
    assert response.json()["discard"]["reason"] == "load test"
    assert operator.post(f"/api/v1/dead-letters/{letter.pk}/discard", {"reason": "x"}, format="json").status_code == 409


def test_each_operation_needs_its_permission(api_client):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "model_id": "later"})
    reader = api_client(read=True, produce=True)  # scopes are not permissions
    viewer = api_client(read=True, permissions=(VIEW,))
    fixed = {**json.loads(bytes(letter.raw)), "model_id": "order-fulfilment"}

    assert reader.get("/api/v1/dead-letters").status_code == 403
    assert reader.get(f"/api/v1/dead-letters/{letter.pk}").status_code == 403
    assert viewer.get("/api/v1/dead-letters").status_code == 200
    for client in (reader, viewer):
        replay = client.post(f"/api/v1/dead-letters/{letter.pk}/replay", {"body": fixed}, format="json")
        assert replay.status_code == 403
        assert "tracking.replay_deadletter" in replay.json()["detail"]
        assert (
            client.post(f"/api/v1/dead-letters/{letter.pk}/discard", {"reason": "x"}, format="json").status_code == 403
        )
    anonymous = api_client()
    anonymous.credentials()
    assert anonymous.get("/api/v1/dead-letters").status_code == 401

    letter.refresh_from_db()
    assert letter.is_open
    assert not InboxEvent.objects.exists()
