"""Each history row keeps what its transition stored in the context, so that an instance's page can
show the context as it changed."""

import pytest

from tests.events import ingest, order_event
from tracking.apply.applier import instances_apply_pending
from tracking.models import ProcessInstance, TransitionRecord

pytestmark = pytest.mark.django_db


def test_a_history_row_records_the_context_its_transition_stored(example_model):
    ingest(
        order_event("e1", "A", "order.placed"),
        order_event("e2", "A", "payment.captured"),
        order_event("e3", "A", "warehouse.packed"),
        order_event("e4", "A", "carrier.picked_up", carrier="DHL", tracking_number="JD01"),
    )
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))

    rows = TransitionRecord.objects.order_by("id").values_list("to_state", "context_updates")
    assert list(rows) == [
        ("received", {}),
        ("paid", {}),
        ("packed", {}),
        ("shipped", {"carrier": "DHL", "tracking_number": "JD01"}),
    ]
