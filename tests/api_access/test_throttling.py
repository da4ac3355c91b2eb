"""API rate limits: per token, per address without one, 429 with Retry-After, on the shared cache."""

from __future__ import annotations

import uuid

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from rest_framework.test import APIClient

from api_access.throttling import client_address, parse_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_limits(settings):
    def set_limits(**rates: str) -> None:
        settings.STATUSTRACKER_RATE_LIMITS = {**settings.STATUSTRACKER_RATE_LIMITS, **rates}

    return set_limits


def fresh_address() -> str:
    """An address no other test (or earlier run, on a cache kept in files) has counted."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def test_a_token_over_its_limit_gets_429_with_retry_after(api_client, low_limits):
    low_limits(**{"api-token": "3/hour"})
    reader = api_client(read=True)

    answers = [reader.get("/api/v1/models") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert throttled.json()["detail"].startswith("Request was throttled.")


def test_the_limit_counts_each_token_apart(api_client, low_limits):
    low_limits(**{"api-token": "2/hour"})
    busy, other = api_client(read=True), api_client(read=True)

    for _ in range(2):
        assert busy.get("/api/v1/models").status_code == 200
    assert busy.get("/api/v1/models").status_code == 429

    # Same user address, another token: its own count.
    assert other.get("/api/v1/models").status_code == 200


def test_every_endpoint_of_a_token_counts_against_one_limit(api_client, low_limits, example_model):
    low_limits(**{"api-token": "2/hour"})
    client = api_client(read=True, produce=True)

    assert client.get("/api/v1/instances").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    response = client.post("/api/v1/events", {"event_id": "x"}, format="json")

    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_requests_without_a_token_are_limited_per_address(low_limits):
    low_limits(**{"api-anon": "2/hour"})
    address, other = fresh_address(), fresh_address()
    client = APIClient()

    codes = [client.get("/api/schema/", REMOTE_ADDR=address).status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    assert client.get("/api/schema/", REMOTE_ADDR=other).status_code == 200


def test_health_is_never_limited(low_limits):
    low_limits(**{"api-anon": "1/hour"})
    address = fresh_address()

    codes = {APIClient().get("/healthz", REMOTE_ADDR=address).status_code for _ in range(3)}

    assert 429 not in codes


def test_an_empty_rate_means_no_limit(api_client, low_limits):
    low_limits(**{"api-token": ""})
    reader = api_client(read=True)

    assert {reader.get("/api/v1/models").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("600/minute", (600, 60)), ("5/s", (5, 1)), ("100/hour", (100, 3600)), ("1/day", (1, 86400)), ("", None)],
)
def test_rates_are_requests_per_period(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["600", "ten/minute", "5/fortnight", "0/minute"])
def test_a_malformed_rate_is_refused(rate):
    with pytest.raises(ImproperlyConfigured):
        parse_rate(rate)


def test_a_malformed_rate_fails_the_system_check(low_limits):
    low_limits(**{"page": "lots"})

    errors = [e for e in run_checks() if e.id == "api_access.E001"]

    assert len(errors) == 1
    assert "'lots'" in errors[0].msg


def test_the_client_address_is_read_through_the_trusted_proxies_only(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")

    settings.NUM_PROXIES = 0
    assert client_address(request) == "10.0.0.2"  # no proxy trusted: the header may be forged
    settings.NUM_PROXIES = 1
    assert client_address(request) == "203.0.113.7"  # what our proxy saw; the first entry is the client's word
    settings.NUM_PROXIES = 5
    assert client_address(request) == "6.6.6.6"
