"""Times with any RFC 3339 offset are stored, as the same instant, by the bulk writes (tracking/bulk.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tracking.models import InboxEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("occurred_at", "instant"),
    [
        ("0572-02-14T17:36:47-22:07", datetime(572, 2, 15, 15, 43, 47, tzinfo=UTC)),
        ("2026-11-26T10:15:00+23:59", datetime(2026, 11, 25, 10, 16, tzinfo=UTC)),
    ],
)
def test_an_offset_beyond_what_postgresql_parses_is_stored_as_the_same_instant(
    api_client, example_model, occurred_at, instant
):
    # PostgreSQL reads offsets of at most 15:59 ("time zone displacement out of range"): a 500 before.
    producer = api_client(produce=True)
    event = {
        "event_id": f"far-offset-{occurred_at}",
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-OFFSET",
        "event_type": "order.placed",
        "occurred_at": occurred_at,
    }

    response = producer.post("/api/v1/events", event, format="json")

    assert response.status_code == 202, response.json()
    assert InboxEvent.objects.get(event_id=event["event_id"]).occurred_at == instant
