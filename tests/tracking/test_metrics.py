"""Who may read /metrics: a bearer token when one is set; with none, only a DEBUG server answers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_without_a_token_metrics_are_refused_when_debug_is_off(client, settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics")

    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.content.decode()


def test_without_a_token_metrics_are_open_when_debug_is_on(client, settings):
    settings.DEBUG = True
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics")

    assert response.status_code == 200
    assert "statustracker_inbox_open_events" in response.content.decode()


@pytest.mark.parametrize("debug", [False, True])
def test_with_a_token_only_its_bearer_reads_metrics(client, settings, debug):
    settings.DEBUG = debug
    settings.METRICS_TOKEN = "s3cret"

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})

    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
