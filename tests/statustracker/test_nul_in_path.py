"""A NUL (%00) in a URL path is a 404 on both databases, never a 500 (statustracker/middleware.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/%00",
        "/api/v1/models/order%00fulfilment",
        "/api/v1/instances/%00/x",
        "/api/v1/instances/order-fulfilment/%00",
        "/api/v1/instances/order-fulfilment/CLM/%00/7",
        "/track/%00/",
        "/track/%00/live",
        "/admin/%00/",
    ],
)
def test_a_nul_in_the_path_is_not_found(api_client, example_model, path):
    reader = api_client(read=True)

    response = reader.get(path)

    assert response.status_code == 404


def test_a_nul_in_the_path_is_not_found_for_writes_either(api_client, example_model):
    producer = api_client(produce=True, staff=True)

    assert producer.post("/api/v1/models/%00", {}, format="json").status_code == 404
    assert producer.post("/api/v1/events%00", {}, format="json").status_code == 404


def test_a_nul_in_a_filter_is_a_validation_error(api_client, example_model):
    # Query strings go through DRF fields, which refuse NUL in the API's error format.
    response = api_client(read=True).get("/api/v1/instances", {"model_id": "\x00"})

    assert response.status_code == 400
    assert response.json()["errors"]["model_id"]
