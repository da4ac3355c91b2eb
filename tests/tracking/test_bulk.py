"""The bulk writers used by ingestion and the workers: what goes in comes back, defaults are the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, IntegrityError, transaction

from tracking.bulk import bulk_insert, bulk_set, text_in
from tracking.models import EventStatus, InboxEvent, InstanceStatus, ProcessInstance, TransitionRecord

AWKWARD_DOCUMENT = {
    "quote": 'say "hi"',
    "backslash": "C:\\path\\n",
    "unicode": "Grüße, 東京, 🚚",
    "braces": "{a,b} (c)",
    "nested": [{"a": [1, 2.5, None, True]}, [], {}],
    "big": 2**62,
    "small": -1e-9,
    "empty": "",
    "null": None,
}


def _instance_rows(model, count: int, prefix: str = "T") -> list[dict]:
    return [{"model_id": model.model_id, "transaction_id": f"{prefix}-{n}"} for n in range(count)]


def test_bulk_insert_fills_the_orm_defaults(example_model):
    before = datetime.now(UTC)
    bulk_insert(ProcessInstance, _instance_rows(example_model, 3))

    instances = list(ProcessInstance.objects.order_by("pk"))
    assert [i.transaction_id for i in instances] == ["T-0", "T-1", "T-2"]
    for instance in instances:
        assert instance.state == ""
        assert instance.status == InstanceStatus.WAITING
        assert instance.context == {}
        assert instance.version_id is None
        assert instance.started_at is None
        assert instance.created_at >= before - timedelta(seconds=1)
        assert abs(instance.updated_at - instance.created_at) < timedelta(seconds=1)
    # A callable default is called for every row.
    assert len({i.link_nonce for i in instances}) == 3
    assert all(len(i.link_nonce) >= 16 for i in instances)


def test_bulk_insert_keeps_json_text_and_times_exactly(example_model):
    bulk_insert(ProcessInstance, _instance_rows(example_model, 1))
    instance = ProcessInstance.objects.get()
    occurred = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    bulk_insert(
        InboxEvent,
        [
            {
                "event_id": 'e-"1"\\',
                "model_id": example_model.model_id,
                "instance_id": instance.pk,
                "event_type": "order.placed",
                "occurred_at": occurred,
                "received_at": occurred + timedelta(seconds=1),
                "envelope": {"data": AWKWARD_DOCUMENT},
                "source_kind": "kinesis",
                "source_ref": "stream/shard/1",
            }
        ],
    )

    event = InboxEvent.objects.get()
    assert event.event_id == 'e-"1"\\'
    assert event.envelope == {"data": AWKWARD_DOCUMENT}
    assert event.occurred_at == occurred
    assert event.received_at == occurred + timedelta(seconds=1)
    assert (event.status, event.reason, event.processed_at, event.duplicate_count) == (EventStatus.PENDING, "", None, 0)


def test_bulk_insert_keeps_the_given_order(example_model):
    bulk_insert(ProcessInstance, _instance_rows(example_model, 1))
    instance = ProcessInstance.objects.get()
    states = [f"s{n}" for n in range(50)]
    now = datetime.now(UTC)
    bulk_insert(
        TransitionRecord,
        [{"instance_id": instance.pk, "to_state": state, "occurred_at": now} for state in states],
    )
    assert list(TransitionRecord.objects.order_by("pk").values_list("to_state", flat=True)) == states


def test_bulk_insert_sets_automatic_times_like_the_orm(example_model):
    """``auto_now_add`` wins over a given value, as in ``Model.save`` and ``bulk_create``."""
    bulk_insert(ProcessInstance, _instance_rows(example_model, 1))
    instance = ProcessInstance.objects.get()
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    bulk_insert(
        TransitionRecord,
        [{"instance_id": instance.pk, "to_state": "x", "occurred_at": long_ago, "recorded_at": long_ago}],
    )
    record = TransitionRecord.objects.get()
    assert record.occurred_at == long_ago
    assert record.recorded_at > long_ago + timedelta(days=365)


def test_bulk_insert_ignores_or_refuses_conflicts(example_model):
    bulk_insert(ProcessInstance, _instance_rows(example_model, 2))
    bulk_insert(ProcessInstance, _instance_rows(example_model, 3), ignore_conflicts=True)
    assert sorted(ProcessInstance.objects.values_list("transaction_id", flat=True)) == ["T-0", "T-1", "T-2"]
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(ProcessInstance, _instance_rows(example_model, 1))
    assert ProcessInstance.objects.count() == 3


def test_bulk_insert_in_several_statements(example_model):
    bulk_insert(ProcessInstance, _instance_rows(example_model, 25), batch_size=10)
    assert list(ProcessInstance.objects.order_by("pk").values_list("transaction_id", flat=True)) == [
        f"T-{n}" for n in range(25)
    ]


def test_bulk_insert_of_an_over_long_value_is_refused(postgres_only, example_model):
    with pytest.raises(DataError), transaction.atomic():
        bulk_insert(ProcessInstance, [{"model_id": example_model.model_id, "transaction_id": "x" * 201}])
    assert not ProcessInstance.objects.exists()


def test_bulk_set_writes_the_named_fields_only(example_model):
    bulk_insert(ProcessInstance, _instance_rows(example_model, 3))
    instances = list(ProcessInstance.objects.order_by("pk"))
    started = datetime(2026, 11, 26, 9, 30, 0, 654321, tzinfo=UTC)
    for number, instance in enumerate(instances):
        instance.version_id = example_model.pk if number else None
        instance.status = InstanceStatus.ACTIVE
        instance.context = {"n": number, **AWKWARD_DOCUMENT}
        instance.started_at = started if number else None
        instance.transaction_id = "not written"
    bulk_set(instances, ["version", "status", "context", "started_at"], batch_size=2)

    rows = list(ProcessInstance.objects.order_by("pk"))
    assert [r.transaction_id for r in rows] == ["T-0", "T-1", "T-2"]
    assert [r.version_id for r in rows] == [None, example_model.pk, example_model.pk]
    assert [r.status for r in rows] == [InstanceStatus.ACTIVE] * 3
    assert [r.context for r in rows] == [{"n": n, **AWKWARD_DOCUMENT} for n in range(3)]
    assert [r.started_at for r in rows] == [None, started, started]


def test_text_in_matches_exactly_the_given_strings(example_model):
    names = [f"T-{n}" for n in range(3000)] + ['q"uote', "back\\slash", "Grüße 🚚", "a,b", "{x}"]
    bulk_insert(ProcessInstance, [{"model_id": example_model.model_id, "transaction_id": t} for t in names])
    wanted = names[::7] + ["not there", "T-", "t-1"]
    found = ProcessInstance.objects.filter(transaction_id__in=text_in(wanted)).values_list("transaction_id", flat=True)
    assert sorted(found) == sorted(names[::7])
    assert not ProcessInstance.objects.filter(transaction_id__in=text_in([])).exists()
