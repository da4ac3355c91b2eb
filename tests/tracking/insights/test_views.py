"""The dashboard page and its event-log download: who may see them, and what they show."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import ROOT
from tests.tracking.insights.history import known_history, recompute_dashboards

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/dashboard/order-fulfilment/"


@pytest.fixture
def history():
    version = known_history()
    recompute_dashboards()
    return version


def client_for(*, staff: bool, can_view: bool) -> Client:
    user = get_user_model().objects.create_user("someone", password="unused", is_staff=staff)
    if can_view:
        user.user_permissions.add(Permission.objects.get(codename="view_processinstance"))
    client = Client()
    client.force_login(user)
    return client


def test_the_route_is_named_and_before_the_admins():
    assert reverse("model-dashboard", args=["order-fulfilment"]) == DASHBOARD


def test_staff_with_the_view_permission_see_every_figure(history):
    page = client_for(staff=True, can_view=True).get(DASHBOARD)

    assert page.status_code == 200
    html = page.content.decode()
    assert "Dashboard: Order fulfilment" in html
    assert "<strong>5</strong> instances" in html
    assert 'data-outcome="succeeded">2<' in html
    assert "40.0 %" in html
    # Time in each state: received's median 2 h 30 min, p90 3 h 42 min, 3 of 5 visits past PT2H.
    row = html.split('<tr data-state="received">')[1].split("</tr>")[0]
    assert "2 h 30 min" in row
    assert "3 h 42 min" in row
    assert "60.0 %" in row
    assert "(3 of 5)" in row
    assert "Between milestones" in html
    assert "Payment confirmed" in html
    dot = json.loads(html.split('<script id="insights-paths-dot" type="application/json">')[1].split("</script>")[0])
    assert '"received" -> "paid" [label="3", penwidth=' in dot
    charts = json.loads(html.split('<script id="insights-charts" type="application/json">')[1].split("</script>")[0])
    assert sum(charts["states"]["counts"]) == 5
    for asset in ("vendor/chart-4.6.1.umd.min.js", "vendor/viz-global-3.31.0.js", "models_registry/diagram.js"):
        assert asset in html
    assert "/admin/dashboard/order-fulfilment/event-log?window=30&amp;format=xes" in html


def test_filters(history):
    client = client_for(staff=True, can_view=True)

    assert "<strong>6</strong> instances" in client.get(DASHBOARD, {"window": "all", "version": "1"}).content.decode()
    assert client.get(DASHBOARD, {"version": "2"}).status_code == 404
    assert client.get(DASHBOARD, {"window": "12"}).status_code == 404
    assert client.get("/admin/dashboard/no-such-model/").status_code == 404


@pytest.mark.parametrize(
    ("staff", "can_view", "status"),
    [(False, True, 302), (True, False, 403), (False, False, 302)],
)
def test_others_are_refused(history, staff, can_view, status):
    client = client_for(staff=staff, can_view=can_view)

    for path in (DASHBOARD, DASHBOARD + "event-log?format=csv"):
        response = client.get(path)
        assert response.status_code == status
        if status == 302:
            assert response["Location"].startswith("/admin/login/")


def test_anonymous_visitors_are_sent_to_log_in(history):
    response = Client().get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_download_is_the_dashboards_instances(history):
    response = client_for(staff=True, can_view=True).get(DASHBOARD + "event-log", {"format": "csv", "window": "30"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="order-fulfilment.csv"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("case_id,activity,timestamp")
    assert len(lines) == 1 + 16  # five orders' transitions


def test_the_vendored_chart_js_is_the_npm_package():
    """static/vendor/chart-<version>.umd.min.js is a copy of the pinned npm package, not an edited file."""
    package = json.loads((ROOT / "package.json").read_text())["dependencies"]["chart.js"]
    installed = ROOT / "node_modules" / "chart.js"
    assert json.loads((installed / "package.json").read_text())["version"] == package, "run bin/setup (npm ci)"
    assert (ROOT / "static" / "vendor" / f"chart-{package}.umd.min.js").read_bytes() == (
        installed / "dist" / "chart.umd.min.js"
    ).read_bytes()
    # Its source map, under the name the file points to: collectstatic's manifest follows the reference.
    assert (ROOT / "static" / "vendor" / "chart.umd.min.js.map").read_bytes() == (
        installed / "dist" / "chart.umd.min.js.map"
    ).read_bytes()
