"""Event envelopes for tests, and ingestion that expects every one of them to be accepted."""

from __future__ import annotations

import json

from tracking.arrival.ingest import RawEvent, events_ingest


def order_event(event_id: str, transaction_id: str, event_type: str, model_id="order-fulfilment", **data) -> dict:
    return {
        "event_id": event_id,
        "model_id": model_id,
        "transaction_id": transaction_id,
        "event_type": event_type,
        "occurred_at": "2026-11-26T10:00:00Z",
        "source": "test",
        "data": data,
    }


def ingest(*envelopes: dict) -> None:
    results = events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")
    assert {result.status for result in results} == {"accepted"}
