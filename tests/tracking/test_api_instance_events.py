"""GET /api/v1/instances/{model_id}/{transaction_id}/events: every event of a transaction with its outcome,
before and after its instance starts; the instance's counts by outcome; transaction ids that hold
``/``, ``%``, spaces and other characters, encoded or not."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils.dateparse import parse_datetime

from tests.tracking.test_api_instances import Orders
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db

BASE = "/api/v1/instances/order-fulfilment"


@pytest.fixture
def orders(example_model, api_client):
    return Orders(api_client(produce=True))


@pytest.fixture
def reader(api_client):
    return api_client(read=True)


def get(reader, path: str, *, raw: bool = True, **query):
    """GET ``path`` (already percent-encoded) as gunicorn hands it to Django: decoded, with the path as
    sent in RAW_URI; ``raw=False`` as a server that keeps no such copy (Django's own)."""
    extra = {"RAW_URI": path} if raw else {}
    return reader.get(path, query or None, **extra)


def outcomes(answer: dict) -> list[tuple[str, str, str]]:
    return [(e["event_id"], e["event_type"], e["status"]) for e in answer["results"]]


def test_the_parked_events_of_a_transaction_not_started_yet_are_listed(orders, reader):
    # Given a payment for an order whose order.placed has not arrived: it cannot start the instance
    orders.send("ORD-P", "payment.captured", 0)

    instance = get(reader, f"{BASE}/ORD-P")
    events = get(reader, f"{BASE}/ORD-P/events")

    # Then there is no instance yet, but its event is there, parked, with when it expires
    assert instance.status_code == 404
    assert events.status_code == 200
    answer = events.json()
    assert answer["count"] == 1
    (event,) = answer["results"]
    stored = InboxEvent.objects.get()
    assert event == {
        "event_id": "ORD-P-1",
        "event_type": "payment.captured",
        "status": "parked",
        "reason": stored.reason,
        "occurred_at": "2026-11-26T09:00:00Z",
        "received_at": event["received_at"],
        "processed_at": event["processed_at"],
        "expires_at": event["expires_at"],
        "duplicates": 0,
        "source": "",
        "source_kind": "api",
    }
    assert "no instance yet" in event["reason"]
    assert parse_datetime(event["expires_at"]) - parse_datetime(event["received_at"]) == timedelta(days=7)


def test_every_outcome_is_listed_in_arrival_order_and_counted_on_the_instance(orders, reader):
    orders.send("ORD-S", "order.placed", 0)
    orders.send("ORD-S", "warehouse.packed", 10)  # before payment: parked
    orders.send("ORD-S", "order.shiped", 15)  # no transition uses it: ignored
    orders.send("ORD-S", "carrier.delivered", 18)  # parked, then expired by hand below
    InboxEvent.objects.filter(event_type="carrier.delivered").update(status=EventStatus.EXPIRED)
    placed = InboxEvent.objects.get(event_type="order.placed").envelope
    orders.producer.post("/api/v1/events", placed, format="json")  # sent again: a duplicate
    orders.send("ORD-S", "payment.captured", 20)  # applied, and the packed event after it

    answer = get(reader, f"{BASE}/ORD-S/events").json()

    assert outcomes(answer) == [
        ("ORD-S-1", "order.placed", "applied"),
        ("ORD-S-2", "warehouse.packed", "applied"),
        ("ORD-S-3", "order.shiped", "ignored"),
        ("ORD-S-4", "carrier.delivered", "expired"),
        ("ORD-S-5", "payment.captured", "applied"),
    ]
    assert answer["results"][0]["duplicates"] == 1
    assert answer["results"][2]["reason"] == "no transition for 'order.shiped'"
    assert all(e["expires_at"] is None for e in answer["results"])
    detail = get(reader, f"{BASE}/ORD-S").json()
    assert detail["event_counts"] == {
        "pending": 0,
        "applied": 3,
        "parked": 0,
        "ignored": 1,
        "expired": 1,
        "failed": 0,
        "skipped": 0,
    }
    assert (detail["duplicate_events"], detail["parked_events"]) == (1, 0)


def test_events_are_paged_like_the_other_lists(orders, reader):
    orders.send("ORD/PAGE", "order.placed", 0)
    for minutes in range(1, 5):
        orders.send("ORD/PAGE", "payment.failed" if minutes % 2 else "payment.captured", minutes)

    first = get(reader, f"{BASE}/ORD%2FPAGE/events", limit="2").json()
    second = reader.get(first["next"]).json()
    last = reader.get(second["next"]).json()

    assert first["count"] == 5
    assert [len(page["results"]) for page in (first, second, last)] == [2, 2, 1]
    assert [e["event_id"] for page in (first, second, last) for e in page["results"]] == [
        f"ORD/PAGE-{n}" for n in range(1, 6)
    ]
    assert get(reader, f"{BASE}/ORD%2FPAGE/events", limit="0").status_code == 400


def test_a_transaction_without_events_is_404(orders, reader):
    orders.send("ORD-1", "order.placed", 0)

    assert get(reader, f"{BASE}/ORD-NONE/events").status_code == 404
    assert get(reader, "/api/v1/instances/no-such-model/ORD-1/events").status_code == 404
    assert get(reader, "/api/v1/instances/claim/ORD-1/events").status_code == 404


def test_the_events_need_the_reader_scope(orders, api_client):
    orders.send("ORD-1", "order.placed", 0)

    assert api_client(produce=True).get(f"{BASE}/ORD-1/events").status_code == 403
    assert api_client().get(f"{BASE}/ORD-1/events").status_code == 403


TRANSACTION_IDS = ["CB/NEW", "a/b/c", "50%off", "%2F", "two words", "café/日本", " lead", "events", "x/events"]


@pytest.mark.parametrize("transaction_id", TRANSACTION_IDS)
@pytest.mark.parametrize("raw", [True, False], ids=["path kept (gunicorn)", "path decoded only"])
def test_any_transaction_id_is_addressed_percent_encoded(orders, reader, transaction_id, raw):
    orders.send(transaction_id, "order.placed", 0)
    orders.send(transaction_id, "payment.captured", 1)
    encoded = quote(transaction_id, safe="")

    detail = get(reader, f"{BASE}/{encoded}", raw=raw)
    events = get(reader, f"{BASE}/{encoded}/events", raw=raw)

    if transaction_id.endswith("/events") and not raw:
        # Without the path as sent, ".../x%2Fevents" cannot be told from ".../x/events": the events of "x"
        assert detail.status_code == 404
    else:
        assert detail.status_code == 200, detail.content
        assert detail.json()["transaction_id"] == transaction_id
        assert detail.json()["state"] == "paid"
    assert events.status_code == 200, events.content
    assert [e["event_id"] for e in events.json()["results"]] == [f"{transaction_id}-1", f"{transaction_id}-2"]


def test_slashes_sent_unencoded_keep_working_and_a_last_events_segment_lists_the_events(orders, reader):
    orders.send("CLM/7", "order.placed", 0)
    orders.send("CLM/7/events", "order.placed", 0)

    # The instance, as before
    assert get(reader, f"{BASE}/CLM/7").json()["transaction_id"] == "CLM/7"
    # A last segment "events" lists the events of what comes before it
    assert [e["event_id"] for e in get(reader, f"{BASE}/CLM/7/events").json()["results"]] == ["CLM/7-1"]
    assert [e["event_id"] for e in get(reader, f"{BASE}/CLM/7/events/events").json()["results"]] == ["CLM/7/events-2"]
    # An id that ends in "/events" is its instance when that slash is encoded
    assert get(reader, f"{BASE}/CLM/7%2Fevents").json()["transaction_id"] == "CLM/7/events"
    assert get(reader, f"{BASE}/CLM%2F7%2Fevents").json()["transaction_id"] == "CLM/7/events"
    assert ProcessInstance.objects.count() == 2


def test_the_raw_path_of_an_absolute_request_uri_and_of_asgi_is_read():
    from types import SimpleNamespace

    from api_access.paths import raw_request_path

    assert raw_request_path(SimpleNamespace(META={"RAW_URI": "http://h/a%2Fb/events?x=1"})) == "/a%2Fb/events"
    assert raw_request_path(SimpleNamespace(META={"REQUEST_URI": "/a%2Fb?x=/y"})) == "/a%2Fb"
    assert raw_request_path(SimpleNamespace(META={}, scope={"raw_path": b"/a%2Fb"})) == "/a%2Fb"
    assert raw_request_path(SimpleNamespace(META={})) is None
