"""GET /api/v1/handlers: the registered handlers with their descriptions and declared reads."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

import tests.rogue_handlers  # noqa: F401 - registers puppet, a handler that declares what it reads
from models_registry.handlers import handler_catalogue

pytestmark = pytest.mark.django_db


def test_readers_list_the_handlers_by_name_with_what_they_do_and_read(api_client):
    reader = api_client(read=True)

    response = reader.get("/api/v1/handlers?limit=500")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(handler_catalogue())
    names = [handler["name"] for handler in body["results"]]
    assert names == sorted(names)
    by_name = {handler["name"]: handler for handler in body["results"]}
    assert by_name["declarative"]["description"].startswith("The model's transition table")
    assert by_name["declarative"]["reads"] == {}
    assert by_name["puppet"]["reads"] == {"*": ["move_to"]}


def test_the_list_is_paginated_like_the_others(api_client):
    response = api_client(read=True).get("/api/v1/handlers?limit=1&offset=1")

    assert response.status_code == 200
    assert [handler["name"] for handler in response.json()["results"]] == [handler_catalogue()[1].name]
    assert response.json()["previous"] is not None


def test_listing_handlers_needs_the_reader_scope(api_client):
    assert APIClient().get("/api/v1/handlers").status_code == 401
    producer = api_client(produce=True).get("/api/v1/handlers")
    assert producer.status_code == 403
    assert "reader scope" in producer.json()["detail"]
