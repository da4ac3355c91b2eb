import pytest

from tests.conftest import EXAMPLES, load_example_model, wait_for
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = [pytest.mark.integration]


def test_worker_applies_example(start_worker):
    load_example_model()
    start_worker()
    lines = (EXAMPLES / "order-fulfilment-events.jsonl").read_bytes().splitlines()
    events_ingest(items=[RawEvent(line, f"l{i}") for i, line in enumerate(lines)], source_kind="file")
    wait_for(lambda: not InboxEvent.objects.filter(status=EventStatus.PENDING).exists(), message="applied")
    states = dict(ProcessInstance.objects.values_list("transaction_id", "state"))
    assert states == {"ORD-1001": "shipped", "ORD-1002": "packed", "ORD-1003": "on_hold"}
