"""What keeps events from being lost or stuck: the sweep after a lost task, park_ttl expiry,
stale events, terminal states, and apply tasks that find nothing to do."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import yaml
from django.conf import settings

import tests.gated_handler  # noqa: F401 - registers the "gated" handler in this process too
from models_registry.services import model_import
from tests.conftest import EXAMPLES, load_example_model, wait_for
from tests.events import ingest, order_event
from tests.gated_handler import GATE_ENV, entered, open_gate
from tests.reference_replay import replay
from tests.service_state import expected, nothing_pending, observed
from tracking.apply.applier import instances_apply_pending
from tracking.inbox.expiry import events_expire_parked
from tracking.inbox.sweep import pending_sweep
from tracking.models import EventStatus, InboxEvent, ProcessInstance, TransitionRecord

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())


def apply_all() -> int:
    return instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True))).decided


def drop_every_message() -> None:
    """Empty the broker: the queue, and on Redis the messages a killed worker had taken but not
    acknowledged (Redis would hand them out again only after the visibility timeout, an hour)."""
    from statustracker.celery import app

    app.control.purge()
    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("unacked", "unacked_index")


# --- a lost task ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_killed_workers_task_is_enqueued_again_by_the_sweep(start_worker, tmp_path):
    # Given a model whose handler holds the worker at a gate, and a worker that took its task
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "gated-orders", "handler": "gated"})
    worker_env = {"STATUSTRACKER_HANDLER_MODULES": "tests.gated_handler", GATE_ENV: str(tmp_path)}
    first = start_worker(concurrency=1, extra_env=worker_env)
    stream = [
        order_event("a1", "A", "order.placed", "gated-orders"),
        order_event("a2", "A", "payment.captured", "gated-orders"),
        order_event("b1", "B", "warehouse.packed", "gated-orders"),
        order_event("b2", "B", "order.placed", "gated-orders"),
        order_event("b3", "B", "payment.captured", "gated-orders"),
    ]
    ingest(*stream)
    wait_for(lambda: entered(tmp_path), message="the worker to take the task")

    # When the worker is killed in the middle of it and its message is gone
    first.kill()
    drop_every_message()

    # Then nothing was applied (the transaction died with the worker), nothing was lost
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {EventStatus.PENDING}
    assert not TransitionRecord.objects.exists()

    # And the sweep enqueues the instances again, and a new worker applies everything
    open_gate(tmp_path)
    assert pending_sweep(older_than=timedelta(hours=1)) == 0  # younger events are left alone
    assert pending_sweep(older_than=timedelta(0)) == 2
    # (Started after the sweep: a worker also sweeps when it connects, and could get there first.)
    start_worker(concurrency=1, extra_env=worker_env)
    wait_for(nothing_pending, message="the new worker to apply the swept events")

    result = observed("gated-orders")
    assert {txn: entry["state"] for txn, entry in result.items()} == {"A": "paid", "B": "packed"}
    assert result == expected(replay({**EXAMPLE, "id": "gated-orders"}, stream))
    assert TransitionRecord.objects.count() == 5  # two creations, three transitions: each once


# --- park_ttl ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_parked_events_expire_after_park_ttl_and_are_not_applied_later():
    # Given a model that waits one second for parked events, and one that waits an hour
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "quick", "park_ttl": "PT1S"})
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "patient", "park_ttl": "PT1H"})
    for model_id in ("quick", "patient"):
        ingest(
            order_event(f"{model_id}-1", "STARTED", "order.placed", model_id),
            order_event(f"{model_id}-2", "STARTED", "carrier.picked_up", model_id),  # needs packed
            order_event(f"{model_id}-3", "NEVER", "payment.captured", model_id),  # no instance yet
        )
    apply_all()
    assert set(InboxEvent.objects.filter(event_id__endswith=("-2")).values_list("status", flat=True)) == {"parked"}

    # When park_ttl has passed for the quick model
    wait_for(events_expire_parked, timeout=30, message="parked events of the quick model to expire")

    # Then its parked events are expired, with the reason; the patient model's still wait
    status = dict(InboxEvent.objects.values_list("event_id", "status"))
    assert status == {
        "quick-1": "applied",
        "quick-2": "expired",
        "quick-3": "expired",
        "patient-1": "applied",
        "patient-2": "parked",
        "patient-3": "parked",
    }
    assert InboxEvent.objects.get(event_id="quick-2").reason == "still parked after park_ttl"
    assert InboxEvent.objects.get(event_id="quick-3").reason == "no instance was started within park_ttl"
    assert events_expire_parked() == 0

    # And an expired event is not applied when the instance catches up; a parked one is
    for model_id in ("quick", "patient"):
        ingest(
            order_event(f"{model_id}-4", "STARTED", "payment.captured", model_id),
            order_event(f"{model_id}-5", "STARTED", "warehouse.packed", model_id),
        )
    apply_all()
    states = dict(ProcessInstance.objects.values_list("model__key", "state").filter(transaction_id="STARTED"))
    assert states == {"quick": "packed", "patient": "shipped"}
    assert InboxEvent.objects.get(event_id="quick-2").status == "expired"


# --- stale events, terminal states ---------------------------------------------------------------


@pytest.mark.django_db
def test_stale_events_are_ignored_with_a_reason():
    load_example_model()
    ingest(
        order_event("1", "T", "order.placed"),
        order_event("2", "T", "payment.captured"),
        order_event("3", "T", "warehouse.packed"),
        order_event("4", "T", "payment.failed"),  # only leaves received: stale now
        order_event("5", "T", "payment.captured"),  # leaves received/on_hold: stale now
    )
    apply_all()

    instance = ProcessInstance.objects.get()
    assert instance.state == "packed"
    ignored = InboxEvent.objects.filter(status=EventStatus.IGNORED).order_by("pk")
    assert [event.event_id for event in ignored] == ["4", "5"]
    assert all(event.reason and event.processed_at for event in ignored)
    assert list(instance.history.values_list("to_state", flat=True)) == ["received", "paid", "packed"]


@pytest.mark.django_db
def test_terminal_states_ignore_further_events_and_drop_parked_ones():
    load_example_model()
    ingest(
        order_event("1", "T", "order.placed"),
        order_event("2", "T", "carrier.picked_up"),  # parked: needs packed
        order_event("3", "T", "order.cancelled", reason="customer"),
    )
    apply_all()
    ingest(order_event("4", "T", "payment.captured"), order_event("5", "T", "order.cancelled", reason="again"))
    apply_all()

    instance = ProcessInstance.objects.get()
    assert (instance.state, instance.status) == ("cancelled", "failed")
    status = dict(InboxEvent.objects.values_list("event_id", "status"))
    assert status == {"1": "applied", "2": "ignored", "3": "applied", "4": "ignored", "5": "ignored"}
    assert "terminal" in InboxEvent.objects.get(event_id="4").reason
    assert instance.history.count() == 2


# --- tasks with nothing to do --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_apply_task_for_instances_with_nothing_pending_changes_nothing():
    load_example_model()
    ingest(
        order_event("1", "T", "order.placed"),
        order_event("2", "T", "warehouse.packed"),  # stays parked
        order_event("3", "U", "payment.captured"),  # stays parked: no instance
    )
    assert apply_all() == 3

    def snapshot():
        return (
            list(ProcessInstance.objects.order_by("pk").values()),
            list(InboxEvent.objects.order_by("pk").values()),
            list(TransitionRecord.objects.order_by("pk").values()),
        )

    before = snapshot()
    assert apply_all() == 0
    assert instances_apply_pending(instance_ids=[]).decided == 0
    assert instances_apply_pending(instance_ids=[10**9]).decided == 0
    assert snapshot() == before
    assert pending_sweep(older_than=timedelta(0)) == 0


# --- one bad instance does not hold up the others --------------------------------------------------


@pytest.mark.django_db
def test_an_expression_that_fails_on_an_event_counts_as_null():
    # Given a model whose conditions and context fields call functions on fields that may be absent
    document = copy.deepcopy(EXAMPLE) | {"id": "vip-orders"}
    document["transitions"][0] |= {
        "when": "contains(data.tags, 'vip') || data.amount > `0`",
        "set": {"amount": "abs(data.amount)", "tag_count": "length(data.tags)"},
    }
    model_import(document=document)

    # When events arrive without those fields, and with them
    ingest(
        order_event("1", "A", "order.placed", "vip-orders"),
        order_event("2", "A", "payment.captured", "vip-orders"),  # contains(null, ...) fails: false
        order_event("3", "B", "order.placed", "vip-orders"),
        order_event("4", "B", "payment.captured", "vip-orders", tags=["vip"], amount="12"),  # abs("12") fails
        order_event("5", "C", "order.placed", "vip-orders"),
        order_event("6", "C", "payment.captured", "vip-orders", tags=["vip"], amount=-5),
    )
    apply_all()

    # Then they are decided like any other event, and the other orders are not held up
    status = dict(InboxEvent.objects.values_list("event_id", "status"))
    assert status == {"1": "applied", "2": "ignored", "3": "applied", "4": "applied", "5": "applied", "6": "applied"}
    instances = {i.transaction_id: i for i in ProcessInstance.objects.all()}
    assert {t: i.state for t, i in instances.items()} == {"A": "received", "B": "paid", "C": "paid"}
    assert instances["B"].context == {"amount": None, "tag_count": 1}
    assert instances["C"].context == {"amount": 5, "tag_count": 1}


@pytest.mark.django_db
def test_a_handler_that_fails_leaves_its_events_pending_and_the_rest_of_the_task_applies():
    # Given a model whose handler raises for one transaction, and a healthy model
    model_import(document={**copy.deepcopy(EXAMPLE), "id": "fragile-orders", "handler": "failing_for_x"})
    load_example_model()
    ingest(
        order_event("1", "X", "order.placed", "fragile-orders"),
        order_event("2", "Y", "order.placed", "fragile-orders"),
        order_event("3", "Z", "order.placed"),
    )

    # When one apply task covers all three instances
    decided = apply_all()

    # Then the failing instance's event stays pending (the sweep will offer it again) and the
    # others are applied
    assert decided == 2
    status = dict(InboxEvent.objects.values_list("event_id", "status"))
    assert status == {"1": "pending", "2": "applied", "3": "applied"}
    assert pending_sweep(older_than=timedelta(0)) == 1
