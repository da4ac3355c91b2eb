"""The OpenAPI schema, the Swagger UI docs page (offline), and /healthz."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/events", "post"),
    ("/api/v1/handlers", "get"),
    ("/api/v1/instances", "get"),
    ("/api/v1/instances/{model_id}/{transaction_id}", "get"),
    ("/api/v1/instances/{model_id}/{transaction_id}/events", "get"),
    ("/api/v1/models", "get"),
    ("/api/v1/models", "post"),
    ("/api/v1/models/{model_id}", "get"),
    ("/api/v1/models/{model_id}/try", "post"),
    ("/api/v1/models/{model_id}/event-log", "get"),
    ("/api/v1/dead-letters", "get"),
    ("/api/v1/dead-letters/{dead_letter_id}", "get"),
    ("/api/v1/dead-letters/{dead_letter_id}/replay", "post"),
    ("/api/v1/dead-letters/{dead_letter_id}/discard", "post"),
    ("/api/v1/webhooks", "get"),
    ("/api/v1/webhooks", "post"),
    ("/api/v1/webhooks/{subscription_id}", "get"),
    ("/api/v1/webhooks/{subscription_id}", "patch"),
    ("/api/v1/webhooks/{subscription_id}", "delete"),
    ("/api/v1/webhooks/{subscription_id}/rotate-secret", "post"),
    ("/api/v1/webhooks/{subscription_id}/test", "post"),
    ("/healthz", "get"),
}


def test_schema_generates_without_warnings_and_validates(tmp_path):
    GENERATOR_STATS.reset()

    # --fail-on-warn raises on any generator warning; --validate checks it against the OpenAPI spec.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))

    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= OPERATIONS
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_schema_page_is_served_without_a_token():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "statustracker API"
    events = schema["paths"]["/api/v1/events"]["post"]
    assert set(events["responses"]) == {"202", "400", "401", "403", "409", "429"}
    assert set(events["requestBody"]["content"]) == {
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
    }
    listing = schema["paths"]["/api/v1/instances"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["$ref"] == "#/components/schemas/PaginatedInstanceSummaryList"


def test_docs_page_only_uses_local_assets():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not served by this site"
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not in the static files"
    assert "/api/schema/" in html


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_docs_page_renders_in_a_browser_with_no_network(live_server):
    # Every host name but the loopback address fails to resolve: a CDN asset could not load.
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{live_server.url}/api/docs/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    # Swagger UI rendered the schema it fetched: one block per operation.
    rendered = set(re.findall(r'data-path="([^"]+)"', dom))
    assert rendered >= {path for path, _ in OPERATIONS}, dom[-3000:]
    assert "statustracker API" in dom


def test_healthz_reports_database_and_broker():
    response = APIClient().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthz_is_503_when_the_broker_is_down(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = APIClient().get("/healthz")

    assert response.status_code == 503
    answer = response.json()
    assert (answer["status"], answer["database"]) == ("unavailable", "ok")
    assert answer["broker"].startswith("error: ")
    assert "refused" in answer["broker"].lower()


def test_healthz_is_503_when_the_filesystem_broker_folder_is_missing(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "missing"),
        "data_folder_out": str(tmp_path / "missing"),
    }

    response = APIClient().get("/healthz")

    assert response.status_code == 503
    assert "missing or not writable" in response.json()["broker"]


def test_healthz_needs_no_token_and_ignores_a_bad_one():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token wrong")

    assert client.get("/healthz").status_code == 200
