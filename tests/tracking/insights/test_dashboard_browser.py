"""The dashboard in Debian's headless Chromium, on the history whose figures are known.

Screenshots go to test-artifacts/ for people to look at; with STATUSTRACKER_UPDATE_DOCS_SCREENSHOT
set, the 1280-px one also becomes docs/dashboard.png.
"""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.tracking import test_version_diagram_browser
from tests.tracking.insights.history import KNOWN, known_history, recompute_dashboards

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_version_diagram_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page
PATH = "/admin/dashboard/order-fulfilment/"


def test_the_dashboard_shows_the_known_figures_at_both_widths(admin_page):
    known_history()
    recompute_dashboards()
    ARTIFACTS.mkdir(exist_ok=True)

    for width in (1280, 390):
        page = admin_page(PATH, width=width)

        # The paths: one element per state the history touched, drawn by Graphviz.
        expect(page.locator(".insights-paths.model-diagram-drawn svg")).to_be_visible()
        drawn = page.locator(".insights-paths svg [data-state]").evaluate_all("ns => ns.map(n => n.dataset.state)")
        assert sorted(drawn) == sorted({state for pair in KNOWN["follows"] for state in pair})
        expect(page.locator('.insights-paths svg [data-state="paid"]')).to_contain_text("1 instance")
        # Both charts drawn by Chart.js, with the counts of the tables.
        expect(page.locator("#insights.insights-charts-drawn")).to_have_count(1)
        counts = page.evaluate(
            "() => Chart.getChart(document.querySelector('[data-chart=states]')).data.datasets[0].data"
        )
        assert sorted(counts) == sorted(KNOWN["now"].values())
        started = page.evaluate(
            "() => Chart.getChart(document.querySelector('[data-chart=days]')).data.datasets[0].data"
        )
        assert sum(started) == 5
        # The known dwell times and the share past expected_within.
        received = page.locator('#insights-dwell tr[data-state="received"]')
        expect(received.locator('[data-figure="median"]')).to_have_text("2 h 30 min")
        expect(received.locator('[data-figure="p90"]')).to_have_text("3 h 42 min")
        expect(received.locator('[data-figure="past"]')).to_contain_text("60.0 %")
        expect(page.locator('#insights-dwell tr[data-state="shipped"] [data-figure="median"]')).to_have_text("9 h")
        expect(page.locator('[data-outcome="succeeded"]')).to_have_text("2")
        # Nothing sticks out of the page: wide tables scroll inside their own box.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width}px"
        shot = ARTIFACTS / f"dashboard-{width}.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000
        assert page.problems == []
    if os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "dashboard-1280.png", ROOT / "docs" / "dashboard.png")


def test_without_javascript_the_figures_are_tables(admin_page):
    known_history()
    recompute_dashboards()

    page = admin_page(PATH, javascript=False)

    expect(page.locator(".model-diagram-note")).to_be_visible()
    expect(page.locator('#insights-dwell tr[data-state="paid"] [data-figure="median"]')).to_have_text("1 h 30 min")
    page.locator(".insights-paths summary").click()
    expect(page.locator("#insights-paths-table tbody tr")).to_have_count(len(KNOWN["follows"]))
