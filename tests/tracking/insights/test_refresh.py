"""The dashboard page reads figures worked out in the background, never the history itself."""

import dataclasses
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import wait_for
from tests.tracking.insights.history import known_history, recompute_dashboards
from tracking.insights.selectors import (
    WINDOWS,
    cache_key,
    dashboard_due,
    dashboard_scope,
    refresh_every,
    standard_scopes,
    stored_dashboard,
)
from tracking.insights.services import dashboard_store
from tracking.insights.tasks import refresh_dashboard, refresh_dashboards

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/dashboard/order-fulfilment/"
HEAVY_TABLES = ("tracking_processinstance", "tracking_transitionrecord")


@pytest.fixture
def staff_client():
    user = get_user_model().objects.create_user("staff", password="unused", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def view(client: Client, **query) -> tuple[str, list[str]]:
    """The page's HTML and the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(DASHBOARD, query)
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries.captured_queries]


def scope(window=30, version=None):
    return dashboard_scope(model_key="order-fulfilment", version=version, window_days=window)


def test_the_page_reads_the_stored_figures_and_never_the_history(staff_client):
    known_history()
    recompute_dashboards()

    for window in [*map(str, WINDOWS), "all"]:
        for version in ("", "1"):
            html, queries = view(staff_client, window=window, version=version)

            assert "Figures as of" in html
            assert 'id="insights-charts"' in html
            assert not [sql for sql in queries if any(table in sql for table in HEAVY_TABLES)]
            assert len(queries) <= 8, queries


def test_the_beat_scopes_cover_every_choice_of_the_page():
    version = known_history()

    scopes = list(standard_scopes())

    # One version: its figures are every version's, worked out once and stored for both.
    assert {(s.version_number, s.window_days) for s in scopes} == {(None, w) for w in (*WINDOWS, None)}
    refresh_dashboard("order-fulfilment", None, 30)
    assert stored_dashboard(scope(30, version=version.number)).version == 1
    assert stored_dashboard(scope(30)).version is None
    assert stored_dashboard(scope(30)).instances == 5


def test_nothing_stored_yet_queues_the_recompute_once_and_says_so(staff_client, django_capture_on_commit_callbacks):
    known_history()

    with django_capture_on_commit_callbacks() as sent:
        first, first_queries = view(staff_client)
        second, second_queries = view(staff_client)

    # Both views say the figures are coming, without a chart, and without touching the history.
    for html, queries in ((first, first_queries), (second, second_queries)):
        assert "These figures are being computed" in html
        assert "refresh the page in a minute" in html
        assert "Dashboard: Order fulfilment" in html
        assert 'id="insights-charts"' not in html
        assert "dashboard.js" not in html
        assert "taking longer than it should" not in html
        assert not [sql for sql in queries if any(table in sql for table in HEAVY_TABLES)]
    # Queued once (after the view's transaction), not once per view.
    assert len(sent) == 1
    assert cache.get(cache_key(scope(), "queued")) is not None

    # When the worker has done it, the page shows the figures.
    refresh_dashboard("order-fulfilment", None, 30)
    html, _ = view(staff_client)
    assert "<strong>5</strong> instances" in html
    assert cache.get(cache_key(scope(), "queued")) is None


def test_a_recompute_queued_long_ago_says_a_worker_may_be_missing(staff_client):
    known_history()
    cache.set(cache_key(scope(), "queued"), timezone.now() - timedelta(minutes=10))

    html, _ = view(staff_client)

    assert "These figures are being computed" in html
    assert "taking longer than it should: is a Celery worker running?" in html


def test_the_page_says_when_the_figures_were_computed_and_flags_stale_ones(staff_client):
    known_history()
    recompute_dashboards()

    html, _ = view(staff_client)
    assert "Figures as of" in html
    assert "updated every 5 min." in html
    assert 'id="insights-stale"' not in html

    stored = stored_dashboard(scope())
    dashboard_store(scope(), dataclasses.replace(stored, computed_at=timezone.now() - timedelta(hours=2)))
    html, _ = view(staff_client)
    assert "2\xa0hours ago" in html
    assert 'id="insights-stale"' in html
    assert "the background recompute seems to have stopped" in html


def test_slow_scopes_are_recomputed_less_often():
    known_history()
    recompute_dashboards()
    now = timezone.now()
    quick = stored_dashboard(scope())
    slow = dataclasses.replace(quick, computed_in=71.0)  # a year of a million instances

    assert refresh_every(quick) == timedelta(minutes=5)
    assert not dashboard_due(quick, now=now)
    assert dashboard_due(quick, now=quick.computed_at + timedelta(minutes=4, seconds=59))
    assert refresh_every(slow) == timedelta(minutes=10)
    assert not dashboard_due(slow, now=slow.computed_at + timedelta(minutes=5))
    assert dashboard_due(slow, now=slow.computed_at + timedelta(minutes=10))
    assert dashboard_due(None, now=now)


@pytest.mark.integration
def test_the_beat_task_fills_what_the_page_reads(start_worker, settings, tmp_path, staff_client):
    # The test and the worker share a cache in files, as the processes of one machine do.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    known_history()
    start_worker(concurrency=1, extra_env={"CACHE_URL": f"filecache://{tmp_path}"})

    # A page view before any beat tick queues its own scope, and the worker fills it.
    html, _ = view(staff_client, window="7")
    assert "These figures are being computed" in html
    wait_for(lambda: stored_dashboard(scope(7)), message="the page's scope computed by the worker")

    # A beat tick queues every other scope (the one just computed is not due).
    assert refresh_dashboards() == len(WINDOWS)
    assert refresh_dashboards() == 0  # already queued
    for window in (*WINDOWS, None):
        wait_for(lambda window=window: stored_dashboard(scope(window)), message=f"window {window}")
    html, queries = view(staff_client, window="all")
    assert "<strong>6</strong> instances" in html
    assert not [sql for sql in queries if any(table in sql for table in HEAVY_TABLES)]
