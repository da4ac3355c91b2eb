"""GET /api/v1/models/{id}/event-log: the event log for readers."""

import pytest

from tests.tracking.insights.history import ORDERS, known_history

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/order-fulfilment/event-log"


@pytest.fixture
def history():
    return known_history()


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize(
    ("format", "content_type", "start"),
    [
        ("xes", "application/xml; charset=utf-8", '<?xml version="1.0" encoding="utf-8"?>'),
        ("ocel", "application/json; charset=utf-8", '{"objectTypes": '),
        ("csv", "text/csv; charset=utf-8", "case_id,activity,timestamp"),
    ],
)
def test_each_format(history, api_client, format, content_type, start):
    response = api_client(read=True).get(URL, {"format": format, "window": 30})

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert body(response).startswith(start)


def test_filters(history, api_client):
    reader = api_client(read=True)

    every = body(reader.get(URL, {"format": "csv"})).splitlines()
    recent = body(reader.get(URL, {"format": "csv", "window": 30, "version": 1})).splitlines()

    assert len(recent) == 1 + sum(len(steps) for steps in ORDERS.values())
    assert len(every) == len(recent) + 2


def test_bad_parameters_are_json_errors(history, api_client):
    reader = api_client(read=True)

    missing = reader.get(URL)
    assert missing.status_code == 400
    assert missing["Content-Type"] == "application/json"
    assert "format" in missing.json()["errors"]
    assert reader.get(URL, {"format": "pdf"}).status_code == 400
    assert reader.get(URL, {"format": "csv", "window": 0}).status_code == 400
    assert reader.get(URL, {"format": "csv", "version": 7}).status_code == 404
    assert reader.get("/api/v1/models/nope/event-log", {"format": "csv"}).status_code == 404


def test_reader_scope(history, api_client):
    anonymous = api_client(read=True)
    anonymous.credentials()

    assert anonymous.get(URL, {"format": "csv"}).status_code == 401
    assert api_client(produce=True).get(URL, {"format": "csv"}).status_code == 403
