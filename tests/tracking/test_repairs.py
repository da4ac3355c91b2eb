"""Operators' repairs as services: parked events retried or expired by hand, many instances moved at
once (all or none), and a migration's dry run matching what the migration then does."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth import get_user_model

from models_registry.services import model_import
from tests.events import ingest, order_event
from tests.tracking.test_fsm import apply_all, event_status, history, instance, version_two  # noqa: F401 (fixture)
from tracking.models import EventStatus, InboxEvent, InstanceStatus, ProcessInstance
from tracking.operations.moves import (
    instances_migrate_version,
    instances_migration_plan,
    instances_move_manually,
    migration_candidates,
)
from tracking.operations.parked_events import (
    events_expire_parked_now,
    events_retry_parked,
    instances_retry_parked,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("olga")


def version_with(example_model, change) -> object:
    document = copy.deepcopy(example_model.document)
    change(document)
    version, _ = model_import(document=document)
    return version


@pytest.fixture
def orders(example_model):
    """A received, B on hold, C paid, D delivered; A has a parked warehouse.packed."""
    ingest(
        order_event("a1", "A", "order.placed"),
        order_event("a2", "A", "warehouse.packed"),
        order_event("b1", "B", "order.placed"),
        order_event("b2", "B", "payment.failed"),
        order_event("c1", "C", "order.placed"),
        order_event("c2", "C", "payment.captured"),
        order_event("d1", "D", "order.placed"),
        order_event("d2", "D", "payment.captured"),
        order_event("d3", "D", "warehouse.packed"),
        order_event("d4", "D", "carrier.picked_up"),
        order_event("d5", "D", "carrier.delivered"),
    )
    apply_all()
    assert event_status("a2") == EventStatus.PARKED
    return example_model


# --- parked events ------------------------------------------------------------------------------------


def test_a_retried_parked_event_is_offered_again_and_applies_once_it_can(
    example_model, django_capture_on_commit_callbacks
):
    # Given an event for a transaction that no version lets start with it
    ingest(order_event("x1", "X", "payment.captured"))
    apply_all()
    assert event_status("x1") == EventStatus.PARKED
    # and a version 2 that accepts it as a start event
    version_with(example_model, lambda d: d["start_events"].append("payment.captured"))

    with django_capture_on_commit_callbacks() as sent:
        retried = events_retry_parked(event_pks=InboxEvent.objects.values_list("pk", flat=True))

    # Then it is pending, an apply task is sent for it, and a worker starts the instance with it
    assert (retried, event_status("x1"), len(sent)) == (1, EventStatus.PENDING, 1)
    apply_all()
    assert (event_status("x1"), instance("X").state, instance("X").version.number) == ("applied", "paid", 2)


def test_a_retried_parked_event_that_still_cannot_apply_is_parked_again(orders):
    retried = instances_retry_parked(instance_ids=[instance("A").pk, instance("B").pk])

    assert retried == 1
    assert event_status("a2") == EventStatus.PENDING
    apply_all()
    assert event_status("a2") == EventStatus.PARKED
    assert instance("A").state == "received"


def test_only_parked_events_are_retried_or_expired(orders, operator):
    everything = InboxEvent.objects.values_list("pk", flat=True)

    expired = events_expire_parked_now(event_pks=everything, actor=operator, note="order withdrawn")

    assert expired == 1
    a2 = InboxEvent.objects.get(event_id="a2")
    assert (a2.status, a2.reason) == (EventStatus.EXPIRED, "expired by olga: order withdrawn")
    assert a2.processed_at is not None
    assert set(InboxEvent.objects.exclude(event_id="a2").values_list("status", flat=True)) == {EventStatus.APPLIED}
    assert events_retry_parked(event_pks=everything) == 0


# --- moving many instances ------------------------------------------------------------------------------


def test_many_instances_move_at_once_with_who_and_why(orders, operator):
    ids = [instance(t).pk for t in "ABC"]

    moved = instances_move_manually(instance_ids=ids, target="paid", actor=operator, note="paid by bank transfer")

    # C is paid already and is left alone; A's parked packing applies once it is paid
    assert moved == 2
    assert [instance(t).state for t in "ABC"] == ["packed", "paid", "paid"]
    record = instance("B").history.get(to_state="paid")
    assert (record.from_state, record.actor, record.note, record.event) == (
        "on_hold",
        operator,
        "paid by bank transfer",
        None,
    )
    assert history("C") == [("", "received"), ("received", "paid")]


def test_a_move_to_a_state_one_instance_lacks_moves_none(orders, version_two, operator):  # noqa: F811
    ingest(order_event("e1", "E", "order.placed"))
    apply_all()
    assert instance("E").version.number == 2

    with pytest.raises(ValueError, match="not a state of the version of every instance"):
        instances_move_manually(
            instance_ids=[instance("A").pk, instance("E").pk], target="on_hold", actor=operator, note="x"
        )

    assert (instance("A").state, instance("E").state) == ("received", "received")


# --- migrating: the dry run and the migration ---------------------------------------------------------------


def test_the_dry_run_counts_where_instances_land_and_what_is_unmapped(orders, version_two):  # noqa: F811
    instances = ProcessInstance.objects.all()

    unmapped = instances_migration_plan(instances=instances, version=version_two, state_mapping={})
    planned = instances_migration_plan(
        instances=instances, version=version_two, state_mapping={"on_hold": "payment_problem", "received": "paid"}
    )

    # D is delivered: finished instances are not migrated
    assert unmapped.missing == ["on_hold"]
    assert planned.missing == []
    assert (planned.total, planned.version_number) == (3, 2)
    assert planned.landing() == {"paid": 2, "payment_problem": 1}
    assert [(m.from_version, m.from_state, m.to_state, m.count) for m in planned.moves] == [
        (1, "on_hold", "payment_problem", 1),
        (1, "paid", "paid", 1),
        (1, "received", "paid", 1),
    ]


def test_a_migration_does_what_its_dry_run_said_and_records_the_note(orders, version_two, operator):  # noqa: F811
    mapping = {"on_hold": "payment_problem"}
    plan = instances_migration_plan(instances=ProcessInstance.objects.all(), version=version_two, state_mapping=mapping)
    candidates = migration_candidates(ProcessInstance.objects.all(), version=version_two)

    migrated = instances_migrate_version(
        instance_ids=list(candidates.values_list("pk", flat=True)),
        version=version_two,
        state_mapping=mapping,
        actor=operator,
        note="on_hold renamed",
    )

    assert migrated == plan.total == 3
    on_v2 = ProcessInstance.objects.filter(version=version_two)
    landed = {state: on_v2.filter(state=state).count() for state in plan.landing()}
    assert landed == plan.landing()
    record = instance("B").history.last()
    assert (record.from_state, record.to_state, record.actor, record.note) == (
        "on_hold",
        "payment_problem",
        operator,
        "migrated from version 1 to 2: on_hold renamed",
    )
    assert instance("B").status == InstanceStatus.IN_EXCEPTION


def test_a_finished_instance_is_never_migrated(orders, version_two):  # noqa: F811

    migrated = instances_migrate_version(instance_ids=[instance("D").pk], version=version_two, state_mapping={})

    assert migrated == 0
    assert instance("D").version.number == 1
