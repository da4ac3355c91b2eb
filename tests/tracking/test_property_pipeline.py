"""Property: through the whole service, random small models and random event streams come to
what the plain replay of the spec (tests/reference_replay.py) says.

Each example imports its own model, ingests its stream through ``events_ingest`` in random batch
splits (some events in the CloudEvents form, some batches delivered twice, some apply tasks sent
again) and waits for a real worker process to apply it; then states, contexts, outcomes, history
and duplicate counts must equal the replay's. One worker serves all examples; every example has
its own model id, transaction ids and event ids, so examples never see each other's rows.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models_registry.services import model_import
from tests.conftest import wait_for
from tests.reference_replay import replay
from tests.service_state import expected, nothing_pending, observed
from tests.strategies import as_cloudevent, batch_splits, event_streams, status_model_documents
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import ProcessInstance

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNS = itertools.count()


def renamed(envelope: dict, run: str, model_id: str) -> dict:
    return {
        **envelope,
        "event_id": f"{run}-{envelope['event_id']}",
        "transaction_id": f"{run}-{envelope['transaction_id']}",
        "model_id": model_id,
    }


@st.composite
def cases(draw):
    document = draw(status_model_documents(model_id="placeholder"))
    envelopes = draw(event_streams(model_id="placeholder", prefix=""))
    batches = draw(batch_splits(list(range(len(envelopes)))))
    cloud = draw(st.sets(st.integers(0, len(envelopes) - 1)))
    redelivered = draw(st.sets(st.integers(0, len(batches) - 1)))
    kicks = draw(st.integers(0, 2))
    return document, envelopes, batches, cloud, redelivered, kicks


def test_the_service_agrees_with_the_spec_replay(start_worker):
    start_worker(concurrency=2)

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cases())
    def check(case):
        document, envelopes, batches, cloud, redelivered, kicks = case
        run = f"r{next(RUNS)}"
        model_id = f"prop-{run}"
        document = {**document, "id": model_id}
        envelopes = [renamed(envelope, run, model_id) for envelope in envelopes]
        model_import(document=document)

        # Deliver: batch by batch, some batches twice (as a stream re-delivers after a crash)
        deliveries: list[dict] = []
        for number, batch in enumerate(batches):
            for _ in range(2 if number in redelivered else 1):
                items = [
                    RawEvent(json.dumps(as_cloudevent(envelopes[i]) if i in cloud else envelopes[i]).encode(), f"{i}")
                    for i in batch
                ]
                results = events_ingest(items=items, source_kind="file")
                assert "rejected" not in {result.status for result in results}
                deliveries += [envelopes[i] for i in batch]
            # The same apply task delivered again, for every instance of the model so far
            if kicks and number % 2:
                instance_ids = ProcessInstance.objects.filter(model__key=model_id).values_list("pk", flat=True)
                enqueue_instances(dict.fromkeys(instance_ids, ""))
        wait_for(lambda: nothing_pending(model_id), timeout=60, message=f"the worker to apply {model_id}")

        assert observed(model_id) == expected(replay(document, deliveries))

    check()
