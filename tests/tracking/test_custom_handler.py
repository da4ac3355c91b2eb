"""The forward_only handler, used by the parcel-delivery example model, through the service."""

import json

import pytest

from tests.conftest import load_example_model
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db


def _send(*events):
    items = [
        RawEvent(json.dumps({"model_id": "parcel-delivery", "transaction_id": "P-1", **e}).encode()) for e in events
    ]
    assert {r.status for r in events_ingest(items=items, source_kind="file")} == {"accepted"}
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def test_late_scan_does_not_move_a_parcel_back():
    load_example_model("parcel-delivery.yaml")

    # Given a parcel that is out for delivery, when a late "in transit" scan arrives after it,
    _send(
        {"event_id": "a", "event_type": "parcel.announced"},
        {"event_id": "b", "event_type": "parcel.out_for_delivery"},
        {"event_id": "c", "event_type": "parcel.scanned"},
    )

    # then the parcel stays out for delivery and the late scan is recorded as ignored.
    instance = ProcessInstance.objects.get()
    assert instance.state == "out_for_delivery"
    assert InboxEvent.objects.get(event_id="c").status == EventStatus.IGNORED
    assert list(instance.history.values_list("to_state", flat=True)) == ["announced", "out_for_delivery"]


def test_skipped_steps_and_context_from_set():
    load_example_model("parcel-delivery.yaml")

    _send(
        {"event_id": "a", "event_type": "parcel.announced"},
        {"event_id": "b", "event_type": "parcel.delivered", "data": {"signed_by": "R. Roe"}},
        {"event_id": "c", "event_type": "parcel.out_for_delivery"},
    )

    instance = ProcessInstance.objects.get()
    assert (instance.state, instance.status) == ("delivered", "succeeded")
    assert instance.context == {"signed_by": "R. Roe"}
    assert InboxEvent.objects.get(event_id="c").reason.startswith("instance is in terminal state")


def test_failed_attempt_then_a_new_round_leaves_the_exception():
    load_example_model("parcel-delivery.yaml")

    _send(
        {"event_id": "a", "event_type": "parcel.announced"},
        {"event_id": "b", "event_type": "parcel.out_for_delivery"},
        {"event_id": "c", "event_type": "parcel.attempt_failed"},
    )
    assert ProcessInstance.objects.get().status == "in_exception"

    _send({"event_id": "d", "event_type": "parcel.out_for_delivery"})
    instance = ProcessInstance.objects.get()
    assert (instance.state, instance.status) == ("out_for_delivery", "active")
