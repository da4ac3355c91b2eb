"""What ingestion answers beyond accepted and rejected: every problem of a rejected event with the id
it was sent with, a warning for an accepted event that cannot have an effect, and a conflict for an
event id reused with another body (docs/decisions.md, "Reused event ids")."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.events import order_event
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, EventStatus, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db


def ingest(*values, source_kind="file"):
    return events_ingest(
        items=[RawEvent(v if isinstance(v, bytes) else json.dumps(v).encode()) for v in values],
        source_kind=source_kind,
    )


def post(client, value):
    return client.generic("POST", "/api/v1/events", json.dumps(value).encode(), content_type="application/json")


@pytest.fixture
def producer(example_model, api_client):
    return api_client(produce=True)


# --- every problem, and the id it was sent with --------------------------------------------------


def test_a_single_event_with_several_problems_is_answered_with_all_of_them(producer):
    event = order_event("many-1", "ORD-1", "order.placed")
    del event["transaction_id"]
    event.update(occurred_at="yesterday", data=[1], source=7)

    response = post(producer, event)

    assert response.status_code == 400
    answer = response.json()
    expected = [
        ("transaction_id", "required"),
        ("source", "must be a string"),
        ("occurred_at", "must be an RFC 3339 time with a UTC offset"),
        ("data", "must be a JSON object"),
    ]
    # The first problem stays where it was (field, reason); errors lists every one, in order
    assert (answer["field"], answer["reason"]) == expected[0]
    assert [(e["field"], e["reason"]) for e in answer["results"][0]["errors"]] == expected
    assert answer["results"][0]["event_id"] == "many-1"
    for field, reason in expected:
        assert f"{field}: {reason}" in answer["detail"]
    letter = DeadLetter.objects.get()
    assert letter.field == "transaction_id"
    assert letter.reason == "; ".join(f"{f}: {r}" for f, r in expected)


def test_an_unknown_model_is_reported_beside_the_other_problems():
    results = ingest({**order_event("u-1", "ORD-1", "order.placed", model_id="no-such"), "occurred_at": "soon"})

    assert results[0].errors == (
        ("occurred_at", "must be an RFC 3339 time with a UTC offset"),
        ("model_id", "unknown model 'no-such'"),
    )


def test_a_valid_event_with_a_bad_text_deep_inside_names_each_field_once(example_model):
    event = order_event("t-1", "ORD-1", "order.placed")
    event["data"] = {"a": "x\x00", "b": ["y\x00", {"c": "\x00"}]}
    event["source"] = "s\x00"

    (result,) = ingest(event)

    assert result.errors == (("source", "text contains a NUL character"), ("data", "text contains a NUL character"))


@pytest.mark.parametrize(
    ("value", "event_id"),
    [
        ({"event_id": "sent-1", "model_id": "order-fulfilment"}, "sent-1"),
        ({"specversion": "1.0", "id": "ce-sent", "type": "order.placed"}, "ce-sent"),
        ({"event_id": 42, "model_id": "order-fulfilment"}, None),
        ({"model_id": "order-fulfilment"}, None),
        (["not", "an", "object"], None),
    ],
    ids=["native", "cloudevents", "not a string", "none sent", "not an object"],
)
def test_a_rejected_event_in_a_batch_echoes_the_id_it_was_sent_with(producer, value, event_id):
    response = post(producer, {"events": [value, order_event("ok-1", "ORD-1", "order.placed")]})

    assert response.status_code == 202
    rejected, accepted = response.json()["results"]
    assert (rejected["status"], rejected["event_id"]) == ("rejected", event_id)
    assert accepted["status"] == "accepted"


def test_a_kinesis_record_without_an_id_is_echoed_with_the_id_it_stands_for(example_model):
    record = json.dumps({"model_id": "order-fulfilment", "event_type": "order.placed"}).encode()

    (result,) = events_ingest(items=[RawEvent(record, "s/shard-1/42", "s/shard-1/42")], source_kind="kinesis")

    assert (result.status, result.event_id, result.field) == ("rejected", "s/shard-1/42", "transaction_id")


# --- a warning when an accepted event cannot have an effect ---------------------------------------


def test_an_event_type_no_transition_uses_is_accepted_with_a_warning(producer):
    response = post(
        producer,
        {
            "events": [
                order_event("w-1", "ORD-1", "order.placed"),
                order_event("w-2", "ORD-1", "order.shiped"),
                order_event("w-3", "ORD-1", "payment.captured"),
            ]
        },
    )

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 3
    assert "warning" not in results[0]
    assert "warning" not in results[2]
    assert results[1]["warning"] == (
        "no effect: version 1 of 'order-fulfilment' has no transition for 'order.shiped' and does not start "
        "instances with it, so its instances will ignore this event"
    )
    # Stored and decided like any other event
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))
    assert InboxEvent.objects.get(event_id="w-2").status == EventStatus.IGNORED


def test_the_warning_costs_no_query(example_model):
    # Given the definition already compiled, as in a running process
    ingest(order_event("q-prime", "Q-prime", "no.such.type"))

    with CaptureQueriesContext(connection) as plain:
        results = ingest(*[order_event(f"p-{n}", f"P-{n}", "order.placed") for n in range(200)])
    assert not any(result.warning for result in results)
    with CaptureQueriesContext(connection) as warned:
        results = ingest(*[order_event(f"q-{n}", f"Q-{n}", f"no.such.type.{n % 7}") for n in range(200)])

    assert all(result.warning for result in results)
    assert len(warned.captured_queries) == len(plain.captured_queries)


# --- conflicts: an event id reused with another body ----------------------------------------------

SAME_BODY = {
    "the same envelope": lambda e: e,
    "keys in another order": lambda e: dict(reversed(list(e.items()))),
    "the same instant at another offset": lambda e: {**e, "occurred_at": "2026-11-26T11:00:00+01:00"},
    "a number written otherwise": lambda e: {**e, "data": {"amount": 10.0, "tags": ["a"]}},
    "the CloudEvents form": lambda e: {
        "specversion": "1.0",
        "id": e["event_id"],
        "type": e["event_type"],
        "source": e["source"],
        "subject": e["transaction_id"],
        "modelid": e["model_id"],
        "time": e["occurred_at"],
        "data": e["data"],
    },
}


@pytest.mark.parametrize("variant", SAME_BODY.values(), ids=SAME_BODY.keys())
def test_the_same_event_sent_again_is_a_duplicate(example_model, variant):
    event = order_event("same-1", "ORD-1", "order.placed", amount=10, tags=["a"])
    ingest(event)

    (result,) = ingest(variant(event))

    assert result.status == "duplicate"
    assert InboxEvent.objects.get(event_id="same-1").duplicate_count == 1
    assert not DeadLetter.objects.exists()


def test_an_event_without_a_time_sent_again_is_a_duplicate_though_the_stored_time_is_its_arrival(example_model):
    event = order_event("no-time", "ORD-1", "order.placed")
    del event["occurred_at"]
    ingest(event)

    assert [r.status for r in ingest(event)] == ["duplicate"]
    # But a time where none was sent is another body
    (result,) = ingest({**event, "occurred_at": "2026-11-26T10:00:00Z"})
    assert (result.status, result.reason) == (
        "conflict",
        "event_id 'no-time' was stored before with a different body (it differs in occurred_at); "
        "this event is not applied",
    )


def test_an_id_reused_with_another_body_is_a_conflict_dead_lettered_and_never_applied(example_model):
    ingest(order_event("c-1", "ORD-1", "order.placed"))

    results = ingest(
        order_event("c-1", "ORD-1", "order.cancelled"),
        order_event("c-2", "ORD-2", "order.placed"),
        order_event("c-2", "ORD-2", "order.placed", note="other"),
        order_event("c-2", "ORD-2", "order.placed"),
    )

    assert [(r.status, r.event_id) for r in results] == [
        ("conflict", "c-1"),
        ("accepted", "c-2"),
        ("conflict", "c-2"),
        ("duplicate", "c-2"),
    ]
    assert results[0].reason == (
        "event_id 'c-1' was stored before with a different body (it differs in event_type); this event is not applied"
    )
    assert results[2].field == "event_id"
    assert "differs in data" in results[2].reason
    # The stored events keep their first body; the conflicting ones are dead letters with their bytes
    assert dict(InboxEvent.objects.values_list("event_id", "event_type")) == {
        "c-1": "order.placed",
        "c-2": "order.placed",
    }
    assert dict(InboxEvent.objects.values_list("event_id", "duplicate_count")) == {"c-1": 0, "c-2": 1}
    letters = list(DeadLetter.objects.order_by("id").values_list("field", "reason", "raw"))
    assert [(field, reason.split(" (")[0]) for field, reason, _ in letters] == [
        ("event_id", "conflict: event_id 'c-1' was stored before with a different body"),
        ("event_id", "conflict: event_id 'c-2' was stored before with a different body"),
    ]
    assert json.loads(bytes(letters[0][2]))["event_type"] == "order.cancelled"
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))
    assert set(ProcessInstance.objects.values_list("transaction_id", "state")) == {
        ("ORD-1", "received"),
        ("ORD-2", "received"),
    }


def test_a_single_conflicting_event_is_answered_409(producer):
    post(producer, order_event("c-api", "ORD-1", "order.placed"))

    response = post(producer, order_event("c-api", "ORD-9", "order.placed"))

    assert response.status_code == 409
    answer = response.json()
    assert answer["field"] == "event_id"
    assert answer["detail"].startswith("Event id conflict: event_id: event_id 'c-api' was stored before")
    assert answer["results"] == [
        {"index": 0, "status": "conflict", "event_id": "c-api", "field": "event_id", "reason": answer["reason"]}
    ]
    assert "differs in transaction_id" in answer["reason"]
    # In a batch it is one result among others, counted apart from duplicates
    response = post(
        producer,
        {"events": [order_event("c-api", "ORD-9", "order.placed"), order_event("c-api", "ORD-1", "order.placed")]},
    )
    assert response.status_code == 202
    counts = response.json()
    assert (counts["accepted"], counts["duplicate"], counts["conflict"], counts["rejected"]) == (0, 1, 1, 0)
