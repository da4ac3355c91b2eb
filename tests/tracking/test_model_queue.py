"""A model that names its own Celery queue has its work done only by workers on that queue."""

import json

import pytest

from models_registry.models import StatusModel
from tests.conftest import load_example_model, wait_for
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = [pytest.mark.integration]


def test_work_goes_to_the_models_queue(start_worker):
    load_example_model()
    load_example_model("parcel-delivery.yaml")
    StatusModel.objects.filter(key="parcel-delivery").update(queue="parcels")
    start_worker()  # the default queue only

    events_ingest(
        items=[
            RawEvent(json.dumps(e).encode())
            for e in [
                {"event_id": "o1", "model_id": "order-fulfilment", "transaction_id": "O", "event_type": "order.placed"},
                {
                    "event_id": "p1",
                    "model_id": "parcel-delivery",
                    "transaction_id": "P",
                    "event_type": "parcel.announced",
                },
            ]
        ],
        source_kind="file",
    )

    # The default-queue worker applies the order but leaves the parcel's work alone...
    wait_for(lambda: ProcessInstance.objects.filter(transaction_id="O", state="received").exists(), message="order")
    assert InboxEvent.objects.get(event_id="p1").status == EventStatus.PENDING

    # ...until a worker consumes the model's queue.
    start_worker(queues="parcels", concurrency=1)
    wait_for(lambda: ProcessInstance.objects.filter(transaction_id="P", state="announced").exists(), message="parcel")
