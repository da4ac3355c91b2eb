"""Every rejection case of docs/spec/events.md through ``ingest_events``: a dead letter with the raw
bytes, the file and line, and the reason; the accepted lines of the same file are all stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from tests.conftest import load_example_model
from tracking.arrival.envelope import MAX_BYTES, MAX_DEPTH
from tracking.models import DeadLetter, EventStatus, InboxEvent, ProcessInstance, SourceKind

pytestmark = pytest.mark.django_db

MODEL = "order-fulfilment"


def envelope(event_id, /, **fields) -> dict:
    value = {
        "event_id": event_id,
        "model_id": MODEL,
        "transaction_id": f"T-{event_id}",
        "event_type": "order.placed",
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": "shop",
        "data": {"n": 1},
    }
    value.update(fields)
    return {name: field for name, field in value.items() if field is not _DROP}


_DROP = object()


def without(event_id: str, name: str) -> dict:
    value = envelope(event_id)
    del value[name]
    return value


def line(value) -> bytes:
    return json.dumps(value).encode()


def nested(depth: int) -> dict:
    """An envelope whose nesting depth is exactly ``depth`` (the envelope object is level 1)."""
    data: dict = {}
    for _ in range(depth - 2):
        data = {"a": data}
    return envelope(f"deep-{depth}", data=data)


def deeply_nested_text(levels: int) -> bytes:
    """Nesting far beyond what a recursive JSON parser handles."""
    head = line(envelope("very-deep", data=_DROP))[:-1]
    return head + b', "data": ' + b'{"a": ' * levels + b"{}" + b"}" * levels + b"}"


def of_size(event_id: str, size: int) -> bytes:
    """A valid envelope line of exactly ``size`` bytes."""
    skeleton = line(envelope(event_id, data={"pad": ""}))
    return line(envelope(event_id, data={"pad": "x" * (size - len(skeleton))}))


def cloudevent(event_id: str, **drop) -> dict:
    value = {
        "specversion": "1.0",
        "id": event_id,
        "type": "order.placed",
        "source": "shop",
        "subject": f"T-{event_id}",
        "modelid": MODEL,
        "time": "2026-11-26T10:00:00Z",
        "data": {"n": 1},
    }
    return {name: field for name, field in value.items() if name not in drop}


# (line, field named in the dead letter, words in the reason)
REJECTED = [
    (b'{"event_id": "broken"', "", "not JSON"),
    (b"event_id=1", "", "not JSON"),
    (b"\xff\xfe{}", "", "not UTF-8"),
    (json.dumps(envelope("utf-16")).encode("utf-16"), "", "not UTF-8"),
    (b'{"event_id": "latin-1", "data": {"name": "Zo\xeb"}}', "", "not UTF-8"),
    (b'{"event_id": "nan-1", "data": {"x": NaN}}', "", "not JSON"),
    (b'{"event_id": "inf-1", "data": {"x": Infinity}}', "", "not JSON"),
    (line(envelope("big-float", data=_DROP))[:-1] + b', "data": {"x": [1e400]}}', "data", "out of range"),
    (b"[1, 2, 3]", "", "JSON object"),
    (b'"order.placed"', "", "JSON object"),
    (b"42", "", "JSON object"),
    (b"null", "", "JSON object"),
    (line(without("m-1", "event_id")), "event_id", "required"),
    (line(without("m-2", "model_id")), "model_id", "required"),
    (line(without("m-3", "transaction_id")), "transaction_id", "required"),
    (line(without("m-4", "event_type")), "event_type", "required"),
    (line(envelope(17)), "event_id", "string"),
    (line(envelope("w-2", model_id=["order-fulfilment"])), "model_id", "string"),
    (line(envelope("w-3", transaction_id=1001)), "transaction_id", "string"),
    (line(envelope("w-4", event_type=True)), "event_type", "string"),
    (line(envelope("w-5", source={"name": "shop"})), "source", "string"),
    (line(envelope("w-6", occurred_at=1764151200)), "occurred_at", "RFC 3339"),
    (line(envelope("w-7", data="paid")), "data", "JSON object"),
    (line(envelope("w-8", data=[1, 2])), "data", "JSON object"),
    (line(envelope("")), "event_id", "characters"),
    (line(envelope("x" * 129)), "event_id", "characters"),
    (line(envelope("l-2", transaction_id="")), "transaction_id", "characters"),
    (line(envelope("l-3", transaction_id="T" * 201)), "transaction_id", "characters"),
    (line(envelope("l-4", event_type="")), "event_type", "characters"),
    (line(envelope("l-5", event_type="e" * 201)), "event_type", "characters"),
    (line(envelope("l-6", source="s" * 201)), "source", "characters"),
    (line(envelope("l-7", model_id="m" * 65)), "model_id", "characters"),
    (line(envelope("u-1", model_id="no-such-model")), "model_id", "unknown model"),
    (line(nested(MAX_DEPTH + 1)), "", "nested deeper than 32"),
    (deeply_nested_text(5000), "", "nested deeper than 32"),
    (of_size("huge", MAX_BYTES + 1), "", "larger than"),
    (line(envelope("t-1", occurred_at="yesterday")), "occurred_at", "RFC 3339"),
    (line(envelope("t-2", occurred_at="2026-11-26T10:00:00")), "occurred_at", "RFC 3339"),
    (line(envelope("t-3", occurred_at="2026-02-30T10:00:00Z")), "occurred_at", "RFC 3339"),
    (line(envelope("t-4", occurred_at="2026-11-26T25:00:00Z")), "occurred_at", "RFC 3339"),
    (line(envelope("t-5", occurred_at="0001-01-01T00:00:00+01:00")), "occurred_at", "years 1 to 9999"),
    (line(envelope("t-6", occurred_at="9999-12-31T23:00:00-02:00")), "occurred_at", "years 1 to 9999"),
    (line(cloudevent("ce-1", subject=True)), "subject", "required"),
    (line(cloudevent("ce-2", modelid=True)), "modelid", "required"),
    (line(cloudevent("ce-3", id=True)), "id", "required"),
    (line(cloudevent("ce-4", type=True)), "type", "required"),
    (line(envelope("z-1", data={"note": "a\x00b"})), "data", "NUL"),
    (line(envelope("z-2\x00")), "event_id", "NUL"),
    (
        b'{"event_id": "z-3", "model_id": "order-fulfilment", "transaction_id": "T", "event_type": "x", '
        b'"data": {"s": "\\ud800"}}',
        "data",
        "surrogate",
    ),
]

ACCEPTED = [
    line(envelope("ok-1")),
    line(envelope("ok-2", transaction_id="T" * 200, event_type="e" * 200, source="s" * 200)),
    line(envelope("x" * 128)),
    line(without("ok-4", "occurred_at")),
    line(without("ok-5", "source") | {"data": None}),
    line(envelope("ok-6", occurred_at="2026-11-26T11:00:00+01:00")),
    line(nested(MAX_DEPTH)),
    of_size("just-fits", MAX_BYTES),
    line(cloudevent("ce-ok")),
    json.dumps(envelope("ok-unicode", data={"name": "Zoë ✓"}), ensure_ascii=False).encode(),
    b"\xef\xbb\xbf" + line(envelope("ok-bom")),
]


def event_id_of(raw: bytes) -> str:
    value = json.loads(raw.decode("utf-8-sig"))
    return value.get("event_id") or value["id"]


def ingest(path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest_events", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_every_rejection_is_a_dead_letter_and_accepted_lines_are_kept(tmp_path):
    # Given the example model and one file that mixes accepted and rejected lines
    load_example_model()
    lines: list[bytes] = []
    for accepted, rejected in zip(ACCEPTED, REJECTED[: len(ACCEPTED)], strict=True):
        lines += [accepted, rejected[0]]
    lines += [case[0] for case in REJECTED[len(ACCEPTED) :]]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    # When it is fed through the command (one batch)
    out, err = ingest(path)

    # Then every rejected line is a dead letter with its raw bytes, file:line and reason
    assert out.strip() == f"{len(ACCEPTED)} accepted, 0 duplicate, {len(REJECTED)} rejected"
    letters = {letter.source_ref: letter for letter in DeadLetter.objects.all()}
    assert len(letters) == len(REJECTED)
    for raw, field, reason in REJECTED:
        number = lines.index(raw) + 1
        letter = letters[f"{path}:{number}"]
        assert bytes(letter.raw) == raw
        assert letter.source_kind == SourceKind.FILE
        assert (letter.field, reason.lower() in letter.reason.lower()) == (field, True), (raw[:80], letter.reason)
        assert f"{path}:{number}: rejected" in err
    # And every accepted line is stored once, pending, with the native envelope
    stored = {event.event_id: event for event in InboxEvent.objects.all()}
    assert set(stored) == {event_id_of(raw) for raw in ACCEPTED}
    assert {event.status for event in stored.values()} == {EventStatus.PENDING}
    assert stored["ok-6"].occurred_at == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert stored["ok-6"].envelope["occurred_at"] == "2026-11-26T11:00:00+01:00"
    assert stored["ok-5"].envelope["source"] == ""
    assert stored["ok-5"].envelope["data"] == {}
    assert stored["ok-unicode"].envelope["data"] == {"name": "Zoë ✓"}
    assert stored["ce-ok"].envelope == {
        "event_id": "ce-ok",
        "model_id": MODEL,
        "transaction_id": "T-ce-ok",
        "event_type": "order.placed",
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": "shop",
        "data": {"n": 1},
    }
    assert stored["just-fits"].source_ref == f"{path}:{lines.index(ACCEPTED[7]) + 1}"
    # Rejected lines reserve no instance: only accepted transactions have one
    assert set(ProcessInstance.objects.values_list("transaction_id", flat=True)) == {
        stored_event.envelope["transaction_id"] for stored_event in stored.values()
    }


def test_duplicates_in_a_file_and_across_runs_are_counted_not_stored(tmp_path):
    load_example_model()
    first = tmp_path / "first.jsonl"
    first.write_bytes(
        b"\n".join([line(envelope("a")), line(envelope("b")), line(envelope("a", data={"n": 2})), b""]) + b"\n"
    )
    second = tmp_path / "second.jsonl"
    second.write_bytes(b"\r\n".join([line(envelope("b")), line(envelope("c")), line(envelope("a"))]) + b"\r\n")

    out, err = ingest(first)
    assert out.strip() == "2 accepted, 0 duplicate, 0 rejected, 1 conflict"
    assert f"{first}:3: conflict: event_id 'a' was stored before with a different body (it differs in data)" in err
    assert ingest(second)[0].strip() == "1 accepted, 2 duplicate, 0 rejected"

    counts = dict(InboxEvent.objects.values_list("event_id", "duplicate_count"))
    assert counts == {"a": 1, "b": 1, "c": 0}
    # The first delivery wins: the conflicting copy's different data is not stored, but kept as a dead letter
    assert InboxEvent.objects.get(event_id="a").envelope["data"] == {"n": 1}
    letter = DeadLetter.objects.get()
    assert (letter.field, letter.source_ref) == ("event_id", f"{first}:3")
    assert letter.reason.startswith("conflict: event_id 'a' was stored before with a different body")
    assert json.loads(bytes(letter.raw))["data"] == {"n": 2}


def test_small_batches_keep_line_numbers_and_lose_nothing(tmp_path):
    load_example_model()
    lines = [line(envelope(f"s-{i}")) if i % 3 else b"{not json" for i in range(10)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))  # no newline after the last line

    out = StringIO()
    call_command("ingest_events", str(path), "--batch-size", "2", stdout=out, stderr=StringIO())

    assert out.getvalue().strip() == "6 accepted, 0 duplicate, 4 rejected"
    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {f"s-{i}" for i in range(10) if i % 3}
    assert sorted(DeadLetter.objects.values_list("source_ref", flat=True)) == sorted(
        f"{path}:{i + 1}" for i in range(10) if not i % 3
    )
