"""POST /api/v1/events: every rejection case of docs/spec/events.md, batches, duplicates, limits.

A rejected event is answered with a 4xx (a request that is one event) or a per-event
``rejected`` result (a batch) naming the field and the reason, and is kept as a dead letter with
its raw bytes; whatever was accepted beside it is stored and applied.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tracking.apply.applier import instances_apply_pending
from tracking.arrival.envelope import MAX_BYTES, MAX_DEPTH
from tracking.models import DeadLetter, EventStatus, InboxEvent, ProcessInstance, SourceKind

pytestmark = pytest.mark.django_db


def envelope(**overrides) -> dict:
    event = {
        "event_id": f"e-{uuid.uuid4().hex}",
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-1",
        "event_type": "order.placed",
        "occurred_at": "2026-11-26T09:00:00Z",
        "source": "shop",
        "data": {"items": 3},
    }
    for key, value in overrides.items():
        if value is DROP:
            event.pop(key)
        else:
            event[key] = value
    return event


DROP = object()


def nested(depth: int) -> dict:
    """A dict ``depth`` levels deep ({"a": {"a": ... {}}})."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.fixture
def producer(example_model, api_client):
    return api_client(produce=True)


def post_raw(client, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", "/api/v1/events", body, content_type=content_type)


def post_json(client, value):
    return post_raw(client, json.dumps(value).encode())


def apply_all() -> None:
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))


# Each case: (envelope or raw body, the field named, a fragment of the reason).
INVALID_EVENTS = {
    "event_id missing": (envelope(event_id=DROP), "event_id", "required"),
    "model_id missing": (envelope(model_id=DROP), "model_id", "required"),
    "transaction_id missing": (envelope(transaction_id=DROP), "transaction_id", "required"),
    "event_type missing": (envelope(event_type=DROP), "event_type", "required"),
    "event_id null": (envelope(event_id=None), "event_id", "required"),
    "event_id not a string": (envelope(event_id=42), "event_id", "must be a string"),
    "transaction_id not a string": (envelope(transaction_id={"id": 1}), "transaction_id", "must be a string"),
    "event_type not a string": (envelope(event_type=["a"]), "event_type", "must be a string"),
    "source not a string": (envelope(source=7), "source", "must be a string"),
    "occurred_at not a time": (envelope(occurred_at="yesterday"), "occurred_at", "RFC 3339"),
    "occurred_at without offset": (envelope(occurred_at="2026-11-26T09:00:00"), "occurred_at", "UTC offset"),
    "occurred_at a number": (envelope(occurred_at=1700000000), "occurred_at", "RFC 3339"),
    "occurred_at before year 1 in UTC": (
        envelope(occurred_at="0001-01-01T00:00:00+01:00"),
        "occurred_at",
        "within the years 1 to 9999 in UTC",
    ),
    "occurred_at after 9999 in UTC": (
        envelope(occurred_at="9999-12-31T23:00:00-02:00"),
        "occurred_at",
        "within the years 1 to 9999 in UTC",
    ),
    "data not an object": (envelope(data=[1, 2]), "data", "JSON object"),
    "event_id too long": (envelope(event_id="x" * 129), "event_id", "1 to 128 characters"),
    "event_id empty": (envelope(event_id=""), "event_id", "1 to 128 characters"),
    "model_id too long": (envelope(model_id="m" * 65), "model_id", "1 to 64 characters"),
    "transaction_id too long": (envelope(transaction_id="t" * 201), "transaction_id", "1 to 200 characters"),
    "transaction_id empty": (envelope(transaction_id=""), "transaction_id", "1 to 200 characters"),
    "event_type too long": (envelope(event_type="e" * 201), "event_type", "1 to 200 characters"),
    "source too long": (envelope(source="s" * 201), "source", "0 to 200 characters"),
    "unknown model": (envelope(model_id="no-such-model"), "model_id", "unknown model 'no-such-model'"),
    "nested deeper than 32": (envelope(data=nested(MAX_DEPTH)), "", f"nested deeper than {MAX_DEPTH} levels"),
    "larger than 1 MiB": (envelope(data={"blob": "x" * MAX_BYTES}), "", f"larger than {MAX_BYTES} bytes"),
    "CloudEvents subject missing": (
        {"specversion": "1.0", "id": "ce-1", "type": "order.placed", "source": "shop", "modelid": "order-fulfilment"},
        "subject",
        "required",
    ),
}
NOT_EVENTS = {
    "not JSON": (b'{"event_id": "x", ', "", "not JSON"),
    "not UTF-8": (b'{"event_id": "\xff\xfe\xfa"}', "", "not UTF-8"),
    "empty body": (b"", "", "not JSON"),
    "a string": (b'"order.placed"', "", "must be a JSON object"),
    "a number": (b"42", "", "must be a JSON object"),
    "null": (b"null", "", "must be a JSON object"),
    "nested past the JSON parser's limit": (b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "", "nested"),
}


def _dead_letter(field: str) -> DeadLetter:
    letters = list(DeadLetter.objects.all())
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter.source_kind == SourceKind.API
    assert letter.field == field
    return letter


@pytest.mark.parametrize(("event", "field", "reason"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_a_single_invalid_event_is_400_naming_field_and_reason_and_is_dead_lettered(producer, event, field, reason):
    body = json.dumps(event).encode()

    response = post_raw(producer, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field
    assert reason in answer["reason"]
    assert reason in answer["detail"]
    assert field in answer["detail"]
    assert answer["results"] == [
        {
            "index": 0,
            "status": "rejected",
            "event_id": answer["results"][0]["event_id"],
            "field": field,
            "reason": answer["reason"],
            "errors": [{"field": field, "reason": answer["reason"]}],
        }
    ]
    letter = _dead_letter(field)
    assert bytes(letter.raw) == body, "the dead letter keeps the raw bytes"
    assert reason in letter.reason
    assert letter.source_ref == f"api/{producer.token.prefix}/{answer['request_id']}"
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize(("body", "field", "reason"), NOT_EVENTS.values(), ids=NOT_EVENTS.keys())
def test_a_body_that_is_not_an_event_is_400_and_dead_lettered(producer, body, field, reason):
    response = post_raw(producer, body)

    assert response.status_code == 400
    answer = response.json()
    assert reason in answer["reason"]
    assert answer["field"] == field
    letter = _dead_letter(field)
    assert bytes(letter.raw) == body
    assert reason in letter.reason
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize(("event", "field", "reason"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_an_invalid_event_in_a_batch_is_rejected_alone(producer, event, field, reason):
    good_before = envelope(transaction_id="ORD-A")
    good_after = envelope(transaction_id="ORD-B")

    response = post_json(producer, {"events": [good_before, event, good_after]})

    assert response.status_code == 202
    answer = response.json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected", "accepted"]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (2, 0, 1)
    rejected = answer["results"][1]
    assert rejected["index"] == 1
    assert rejected["field"] == field
    assert reason in rejected["reason"]
    letter = _dead_letter(field)
    assert json.loads(bytes(letter.raw)) == event
    assert letter.source_ref == f"api/{producer.token.prefix}/{answer['request_id']}#1"
    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {
        good_before["event_id"],
        good_after["event_id"],
    }


def test_depth_limit_is_exactly_32_levels(producer):
    # The envelope is level 1 and "data" level 2: 30 more dicts inside data reach level 32.
    at_limit = envelope(data=nested(MAX_DEPTH - 1))
    over_limit = envelope(data=nested(MAX_DEPTH))

    response = post_json(producer, {"events": [at_limit, over_limit]})

    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]


def test_size_limit_is_exactly_1_mib(producer):
    event = envelope(data={"blob": ""})
    padding = MAX_BYTES - len(json.dumps(event).encode())
    at_limit = envelope(data={"blob": "x" * padding}, event_id=event["event_id"])
    over_limit = envelope(data={"blob": "x" * (padding + 1)}, event_id=f"{event['event_id']}-big")
    assert len(json.dumps(at_limit).encode()) == MAX_BYTES

    response = post_json(producer, {"events": [at_limit, over_limit]})

    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]


def test_items_of_a_batch_that_are_not_objects_are_rejected(producer):
    good = envelope()

    response = post_json(producer, [good, "text", 5, None, [1]])

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected", "rejected"]
    assert all(r["reason"] == "an event must be a JSON object" for r in results[1:])
    assert DeadLetter.objects.count() == 4


def test_values_that_cannot_be_stored_are_rejected_per_event(producer):
    # NaN is no JSON number, and PostgreSQL stores neither it nor a NUL character: each such
    # event is rejected on its own instead of failing the batch.
    good = json.dumps(envelope(event_id="good"))
    nan = json.dumps(envelope(event_id="nan", data={"amount": 1.0})).replace("1.0", "NaN")
    nul = json.dumps(envelope(event_id="nul", source="a\u0000b"))
    body = f'{{"events": [{good}, {nan}, {nul}]}}'.encode()

    response = post_raw(producer, body)

    assert response.status_code == 202
    results = response.json()["results"]
    assert [(r["status"], r.get("field")) for r in results] == [
        ("accepted", None),
        ("rejected", "data"),
        ("rejected", "source"),
    ]
    assert list(InboxEvent.objects.values_list("event_id", flat=True)) == ["good"]
    assert DeadLetter.objects.count() == 2


def test_a_body_that_is_not_utf8_is_rejected_even_when_it_is_json(producer):
    body = json.dumps({"events": [envelope()]}).encode("utf-16")

    response = post_raw(producer, body)

    assert response.status_code == 400
    assert response.json()["reason"] == "not UTF-8"
    assert InboxEvent.objects.count() == 0


def test_a_mixed_batch_loses_nothing_that_was_accepted(producer):
    # Given a batch of valid events for three orders with bad events between them
    events = []
    for number in range(3):
        txn = f"ORD-{number}"
        events += [
            envelope(transaction_id=txn, event_type="order.placed", event_id=f"{txn}-placed"),
            envelope(transaction_id=txn, event_type="bogus", event_id=f"{txn}-bad", model_id=None),
            envelope(transaction_id=txn, event_type="payment.captured", event_id=f"{txn}-paid"),
            envelope(transaction_id=txn, event_type="warehouse.packed", event_id=f"{txn}-packed", data="x"),
        ]

    # When it is posted and the workers' service applies what was stored
    response = post_json(producer, {"events": events})
    apply_all()

    # Then each valid event was accepted, stored once and applied; each bad one dead-lettered
    assert response.status_code == 202
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (6, 6)
    accepted = {r["event_id"] for r in answer["results"] if r["status"] == "accepted"}
    assert accepted == {f"ORD-{n}-{kind}" for n in range(3) for kind in ("placed", "paid")}
    stored = dict(InboxEvent.objects.values_list("event_id", "status"))
    assert stored == {event_id: EventStatus.APPLIED for event_id in accepted}
    assert set(ProcessInstance.objects.values_list("transaction_id", "state")) == {
        (f"ORD-{n}", "paid") for n in range(3)
    }
    assert sorted(DeadLetter.objects.values_list("field", flat=True)) == ["data"] * 3 + ["model_id"] * 3


def test_a_time_the_database_cannot_hold_is_rejected_and_the_rest_of_the_batch_applies(producer):
    # Given the batch of the bug report: a good event and one whose time is before year 1 in UTC
    batch = {
        "events": [
            {"event_id": "ok1", "model_id": "order-fulfilment", "transaction_id": "B1", "event_type": "order.placed"},
            {
                "event_id": "bad",
                "model_id": "order-fulfilment",
                "transaction_id": "BB",
                "event_type": "order.placed",
                "occurred_at": "0001-01-01T00:00:00+01:00",
            },
        ]
    }

    # When it is posted and applied
    response = post_json(producer, batch)
    apply_all()

    # Then the bad event is rejected naming the field, and the good one is stored and applied
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["field"] == "occurred_at"
    assert list(InboxEvent.objects.values_list("event_id", "status")) == [("ok1", EventStatus.APPLIED)]
    assert DeadLetter.objects.get().field == "occurred_at"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "0001-01-01T01:00:00+01:00", "9999-12-31T23:59:59Z"])
def test_the_extreme_times_the_database_can_hold_are_stored_and_read_back(producer, moment):
    response = post_json(producer, envelope(event_id="edge", occurred_at=moment))
    apply_all()

    assert response.status_code == 202
    event = InboxEvent.objects.get(event_id="edge")
    assert event.status == EventStatus.APPLIED
    assert event.occurred_at.year in (1, 9999)


def test_duplicates_are_reported_and_stored_once(producer):
    first = envelope(event_id="dup-1")

    once = post_json(producer, first)
    again = post_json(producer, first)
    in_batch = post_json(producer, {"events": [envelope(event_id="dup-2"), envelope(event_id="dup-2"), first]})

    assert once.status_code == again.status_code == in_batch.status_code == 202
    assert once.json()["results"] == [{"index": 0, "status": "accepted", "event_id": "dup-1"}]
    assert again.json()["results"] == [{"index": 0, "status": "duplicate", "event_id": "dup-1"}]
    assert [r["status"] for r in in_batch.json()["results"]] == ["accepted", "duplicate", "duplicate"]
    assert in_batch.json()["duplicate"] == 2
    assert dict(InboxEvent.objects.values_list("event_id", "duplicate_count")) == {"dup-1": 2, "dup-2": 1}
    assert DeadLetter.objects.count() == 0


def test_an_accepted_event_is_stored_with_its_source(producer):
    event = envelope()

    response = post_json(producer, event)

    assert response.status_code == 202
    stored = InboxEvent.objects.get()
    assert stored.event_id == event["event_id"]
    assert stored.source_kind == SourceKind.API
    assert stored.source_ref == f"api/{producer.token.prefix}/{response.json()['request_id']}"
    assert stored.envelope["data"] == {"items": 3}


def test_cloudevents_forms_are_accepted(producer):
    cloud_event = {
        "specversion": "1.0",
        "id": "ce-1",
        "type": "order.placed",
        "source": "shop",
        "subject": "ORD-CE",
        "modelid": "order-fulfilment",
        "time": "2026-11-26T09:00:00Z",
        "data": {"items": 1},
    }
    second = {**cloud_event, "id": "ce-2", "type": "payment.captured"}

    one = post_raw(producer, json.dumps(cloud_event).encode(), "application/cloudevents+json")
    batch = post_raw(producer, json.dumps([second]).encode(), "application/cloudevents-batch+json")
    apply_all()

    assert one.status_code == batch.status_code == 202
    assert ProcessInstance.objects.get(transaction_id="ORD-CE").state == "paid"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"events": [envelope(event_id=f"e-{n}") for n in range(501)]}, "events", "501 events; at most 500"),
        ([envelope(event_id=f"e-{n}") for n in range(501)], "", "501 events; at most 500"),
        ({"events": envelope()}, "events", "must be a list"),
        ({"events": []}, "events", "at least one event"),
        ([], "", "at least one event"),
    ],
    ids=["501 in events", "501 in an array", "events not a list", "events empty", "empty array"],
)
def test_a_request_that_is_not_a_batch_of_events_is_400_and_stores_nothing(producer, body, field, reason):
    response = post_json(producer, body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert reason in response.json()["reason"]
    assert InboxEvent.objects.count() == 0


def test_500_events_are_accepted(producer):
    events = [envelope(event_id=f"e-{n}", transaction_id=f"ORD-{n % 50}") for n in range(500)]

    response = post_json(producer, {"events": events})

    assert response.status_code == 202
    assert response.json()["accepted"] == 500
    assert InboxEvent.objects.count() == 500


def test_a_body_over_the_request_limit_is_400_and_its_head_dead_lettered(producer, settings):
    settings.STATUSTRACKER_MAX_REQUEST_BYTES = 2 * MAX_BYTES
    body = json.dumps({"events": [envelope(data={"blob": "x" * (MAX_BYTES // 2)}) for _ in range(5)]}).encode()

    response = post_raw(producer, body)

    assert response.status_code == 400
    assert response.json()["reason"] == f"request body larger than {2 * MAX_BYTES} bytes"
    letter = _dead_letter("")
    assert bytes(letter.raw) == body[: MAX_BYTES + 1]
    assert "first" in letter.source_ref
    assert InboxEvent.objects.count() == 0


def test_a_batch_nested_past_the_json_parser_is_400_not_500(producer):
    body = b'{"events": [{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"

    response = post_raw(producer, body)

    assert response.status_code == 400
    assert "nested deeper" in response.json()["reason"]
    assert bytes(_dead_letter("").raw) == body


def test_an_unsupported_content_type_is_415(producer):
    response = post_raw(producer, b"event_id=1", "application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]
    assert InboxEvent.objects.count() == 0
