"""The customer page and its poll are rate limited per client address: 429 with Retry-After."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import load_example_model
from tests.tracking.test_customer_page import live_url, order_at, path_of
from tracking.progress.links import instance_tracking_url
from tracking.progress.views import PAGE_HEADERS

pytestmark = pytest.mark.django_db


def fresh_address() -> str:
    """An address no other test (or earlier run, on a cache kept in files) has counted."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


@pytest.fixture
def instance(db):
    load_example_model()
    return order_at(f"ORD-{uuid.uuid4().hex[:6]}", "payment.captured")


def test_the_page_answers_429_with_retry_after_over_its_limit(client, settings, instance):
    settings.STATUSTRACKER_RATE_LIMITS = {**settings.STATUSTRACKER_RATE_LIMITS, "page": "3/hour"}
    address = fresh_address()
    url = path_of(instance_tracking_url(instance=instance))

    answers = [client.get(url, REMOTE_ADDR=address) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert 1 <= int(throttled.headers["Retry-After"]) <= 3600
    assert "Too many requests" in throttled.content.decode()
    # Still the page's own headers: the URL is the customer's key, never cached or indexed.
    for header, value in PAGE_HEADERS.items():
        assert throttled.headers[header] == value
    # Another address is not held up.
    assert client.get(url, REMOTE_ADDR=fresh_address()).status_code == 200


def test_the_poll_has_its_own_limit(client, settings, instance):
    settings.STATUSTRACKER_RATE_LIMITS = {**settings.STATUSTRACKER_RATE_LIMITS, "page": "1/hour", "page-poll": "2/hour"}
    address = fresh_address()
    poll = live_url(client.get(path_of(instance_tracking_url(instance=instance)), REMOTE_ADDR=address))

    answers = [client.get(poll, REMOTE_ADDR=address) for _ in range(3)]

    # The page's one allowed view does not use up the poll's allowance, nor the other way round.
    assert [a.status_code for a in answers] == [204, 204, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 3600


def test_a_bad_link_is_counted_too(client, settings):
    # Guessing links costs requests like any other view: the limit comes before the lookup.
    settings.STATUSTRACKER_RATE_LIMITS = {**settings.STATUSTRACKER_RATE_LIMITS, "page": "2/hour"}
    address = fresh_address()

    codes = [client.get(f"/track/nothing-{i}/", REMOTE_ADDR=address).status_code for i in range(3)]

    assert codes == [404, 404, 429]
