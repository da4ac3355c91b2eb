"""Dead letters replayed through ingestion (as received, edited, in bulk) and discarded: what is
recorded on each, and what becomes of one that is still invalid or already in the inbox."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError
from django.utils import timezone

from tests.conftest import load_example_model
from tests.events import ingest, order_event
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, InboxEvent, ProcessInstance, SourceKind
from tracking.operations.dead_letters import (
    INVALID,
    NOT_OPEN,
    dead_letter_body_problems,
    dead_letter_list,
    dead_letter_replay,
    dead_letters_discard,
    dead_letters_replay,
    editable_body,
    edited_body,
    raw_preview,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("operator")


def refused(*envelopes: dict, source_kind: str = "file") -> list[DeadLetter]:
    """Ingest events that must all be refused; their dead letters, in order."""
    before = set(DeadLetter.objects.values_list("pk", flat=True))
    items = [RawEvent(json.dumps(e).encode(), source_ref=f"orders.jsonl:{i + 1}") for i, e in enumerate(envelopes)]
    results = events_ingest(items=items, source_kind=source_kind)
    assert {r.status for r in results} == {"rejected"}
    return sorted(DeadLetter.objects.exclude(pk__in=before), key=lambda letter: letter.source_ref)


def test_a_letter_replayed_after_the_model_is_published_is_accepted_and_applies(operator):
    # Given an event for a model that did not exist yet
    (letter,) = refused(order_event("e1", "ORD-1", "order.placed"))
    assert letter.reason == "unknown model 'order-fulfilment'"
    load_example_model()

    # When it is replayed as received
    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator)

    # Then it is in the inbox, and the letter says who replayed it, when, and what it became
    assert (result.outcome, result.event_id) == ("accepted", "e1")
    letter.refresh_from_db()
    assert letter.replayed_by == operator
    assert letter.replayed_at is not None
    assert (letter.replay_outcome, letter.replay_event_id, letter.replayed_raw) == ("accepted", "e1", None)
    assert not letter.is_open
    event = InboxEvent.objects.get()
    assert event.source_ref == f"orders.jsonl:1 (replay of dead letter #{letter.pk})"
    assert event.source_kind == SourceKind.FILE
    instances_apply_pending(instance_ids=[event.instance_id])
    assert ProcessInstance.objects.get().state == "received"


def test_an_edited_body_is_replayed_and_kept_beside_the_raw_input(operator):
    load_example_model()
    (letter,) = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    edit = json.loads(editable_body(bytes(letter.raw)))
    edit["occurred_at"] = "2026-11-26T10:00:00Z"

    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator, body=edited_body(json.dumps(edit)))

    assert result.outcome == "accepted"
    letter.refresh_from_db()
    assert json.loads(bytes(letter.raw))["occurred_at"] == "yesterday"  # as received, untouched
    assert json.loads(bytes(letter.replayed_raw))["occurred_at"] == "2026-11-26T10:00:00Z"
    assert InboxEvent.objects.get().envelope["occurred_at"] == "2026-11-26T10:00:00Z"


def test_a_letter_still_invalid_is_not_sent_and_stays_open(operator):
    load_example_model()
    (letter,) = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday", "data": []})

    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator)

    assert result.outcome == INVALID
    assert result.problems == [
        ("occurred_at", "must be an RFC 3339 time with a UTC offset"),
        ("data", "must be a JSON object"),
    ]
    letter.refresh_from_db()
    assert letter.is_open
    assert letter.replayed_at is None
    assert DeadLetter.objects.count() == 1  # no second letter for the same input
    assert not InboxEvent.objects.exists()


def test_an_edit_for_a_model_that_does_not_exist_is_named_by_its_field(operator):
    load_example_model()
    (letter,) = refused({**order_event("e1", "ORD-1", "order.placed"), "model_id": "order-fulfilmnet"})

    problems = dead_letter_body_problems(letter=letter, body=bytes(letter.raw))

    assert problems == [("model_id", "unknown model 'order-fulfilmnet'")]
    assert dead_letter_body_problems(letter=letter, body=b'{"event_id": ') == [
        ("", "not JSON: Expecting value: line 1 column 14 (char 13)")
    ]


def test_a_replay_of_an_event_already_in_the_inbox_is_reported_as_a_duplicate(operator):
    load_example_model()
    (letter,) = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    ingest(order_event("e1", "ORD-1", "order.placed"))  # the producer sent it again, fixed

    fixed = {**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"}
    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator, body=json.dumps(fixed).encode())

    assert (result.outcome, result.event_id) == ("duplicate", "e1")
    letter.refresh_from_db()
    assert (letter.replay_outcome, letter.replay_event_id) == ("duplicate", "e1")
    assert InboxEvent.objects.get().duplicate_count == 1


def test_a_replay_that_ingestion_refuses_again_leaves_a_new_letter_naming_the_first(operator):
    # Given an event id the inbox holds with another body (the letter's edit reuses it)
    load_example_model()
    ingest(order_event("e1", "ORD-1", "order.placed"))
    (letter,) = refused({**order_event("e1", "ORD-2", "order.placed"), "occurred_at": "yesterday"})
    fixed = {**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"}

    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator, body=json.dumps(fixed).encode())

    assert result.outcome == "conflict"
    assert result.problems[0][0] == "event_id"
    new = DeadLetter.objects.get(pk=result.new_dead_letter_id)
    assert new.replay_of == letter
    assert new.is_open
    assert new.source_ref == f"orders.jsonl:1 (replay of dead letter #{letter.pk})"
    assert json.loads(bytes(new.raw)) == fixed
    letter.refresh_from_db()
    assert letter.replay_outcome == "conflict"
    assert "stored before with a different body" in letter.replay_detail


def test_bulk_replay_after_a_model_fix(operator):
    letters = refused(
        order_event("e1", "ORD-1", "order.placed"),
        order_event("e2", "ORD-2", "order.placed"),
        {**order_event("e3", "ORD-3", "order.placed"), "transaction_id": None},
    )
    load_example_model()
    dead_letters_discard(dead_letter_ids=[letters[1].pk], actor=operator, reason="test data")

    results = dead_letters_replay(dead_letter_ids=[letter.pk for letter in letters], actor=operator)

    outcomes = {r.dead_letter_id: r.outcome for r in results}
    assert [outcomes[letter.pk] for letter in letters] == ["accepted", NOT_OPEN, INVALID]
    assert list(InboxEvent.objects.values_list("event_id", flat=True)) == ["e1"]
    assert list(dead_letter_list(status="open")) == [letters[2]]
    assert [letter.pk for letter in dead_letter_list(status="replayed")] == [letters[0].pk]


def test_a_kinesis_record_without_an_event_id_keeps_its_reference_as_one(operator):
    reference = "demo/shardId-000000000000/49590338271490256608559692538361571095921575989136588898"
    event = order_event("unused", "ORD-1", "order.placed")
    del event["event_id"]
    events_ingest(
        items=[RawEvent(json.dumps(event).encode(), source_ref=reference, default_event_id=reference)],
        source_kind="kinesis",
    )
    letter = DeadLetter.objects.get()
    load_example_model()

    result = dead_letter_replay(dead_letter_id=letter.pk, actor=operator)

    assert (result.outcome, result.event_id) == ("accepted", reference)
    assert InboxEvent.objects.get().source_kind == "kinesis"


def test_discard_needs_a_reason_and_is_recorded_once(operator):
    (letter,) = refused(order_event("e1", "ORD-1", "order.placed"))

    with pytest.raises(ValueError, match="reason"):
        dead_letters_discard(dead_letter_ids=[letter.pk], actor=operator, reason="  ")
    assert dead_letters_discard(dead_letter_ids=[letter.pk], actor=operator, reason="a test from billing") == 1
    assert dead_letters_discard(dead_letter_ids=[letter.pk], actor=operator, reason="again") == 0

    letter.refresh_from_db()
    assert (letter.discarded_by, letter.discard_reason) == (operator, "a test from billing")
    assert dead_letter_replay(dead_letter_id=letter.pk, actor=operator).outcome == NOT_OPEN


def test_the_database_refuses_a_letter_both_replayed_and_discarded(operator):
    (letter,) = refused(order_event("e1", "ORD-1", "order.placed"))
    now = timezone.now()

    with pytest.raises(IntegrityError):
        DeadLetter.objects.filter(pk=letter.pk).update(
            replayed_at=now, replay_outcome="accepted", discarded_at=now, discard_reason="x"
        )


def test_raw_bytes_are_text_when_they_are_utf8_and_a_hex_dump_otherwise():
    assert raw_preview('{"a": "é"}'.encode()).text == '{"a": "é"}'

    binary = raw_preview(b"\xff\xfe<script>\x00")
    assert binary.text is None
    assert binary.hex_dump == "00000000  ff fe 3c 73 63 72 69 70 74 3e 00                 ..<script>."
    assert raw_preview(b"ok\x1b[31m").text is None  # control characters are shown as bytes

    long = raw_preview(b"x" * 30_000)
    assert long.truncated
    assert len(long.text) == 20_000
    assert long.size == 30_000
