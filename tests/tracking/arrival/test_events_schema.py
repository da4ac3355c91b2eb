"""The events endpoint's schema describes what it really takes (the live check: tests/api_schema/)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def events_operation():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return schema["paths"]["/api/v1/events"]["post"]


def test_empty_bodies_are_not_valid_by_the_schema(events_operation):
    body = events_operation["requestBody"]
    forms = {form["title"]: form for form in body["content"]["application/json"]["schema"]["oneOf"]}

    assert body["required"] is True
    assert forms["EventList"]["minItems"] == 1  # [] is refused with a 400
    assert forms["EventList"]["maxItems"] == 500
    assert forms["EventBatch"]["properties"]["events"]["minItems"] == 1
    # {} is neither an envelope (its required fields) nor a batch (`events`)
    assert set(forms["EventEnvelope"]["required"]) == {"event_id", "model_id", "transaction_id", "event_type"}
    assert set(forms["CloudEvent"]["required"]) == {"specversion", "id", "type", "subject", "modelid"}
    assert forms["EventBatch"]["required"] == ["events"]


def test_every_media_type_takes_the_same_bodies(events_operation):
    schemas = [media["schema"] for media in events_operation["requestBody"]["content"].values()]

    assert len(schemas) == 3
    assert schemas[0] == schemas[1] == schemas[2]


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"events": []}'])
def test_what_the_schema_refuses_the_endpoint_refuses(api_client, example_model, body):
    response = api_client(produce=True).post("/api/v1/events", body, content_type="application/json")

    assert response.status_code == 400
    assert {"detail", "field", "reason", "request_id"} <= set(response.json())


def test_the_429_is_in_the_schema_with_retry_after(events_operation):
    too_many = events_operation["responses"]["429"]

    assert "Retry-After" in too_many["headers"]
