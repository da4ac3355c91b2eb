"""The staff preview of the customer page in Debian's headless Chromium, against a live server.

A staff user logs in to the admin, opens the preview of the branching loan model at the decision
and sees the decision as one neutral step; the state picker steps on to each outcome. Screenshots
go to test-artifacts/progress-preview-{1280,390}.png.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from models_registry.services import model_import
from tests.loan_models import LOAN
from tests.tracking.test_customer_page_browser import ARTIFACTS, browser, new_page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def staff_site(browser, live_server, transactional_db, django_user_model):  # noqa: F811
    cache.clear()
    model_import(document=LOAN)
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a long preview password")
    yield live_server
    cache.clear()


def log_in(page, site) -> None:
    page.goto(site.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a long preview password")
    page.click("input[type=submit]")
    page.wait_for_url(site.url + "/admin/")
    page.problems.clear()  # the admin's pages have no icon: Chromium's own /favicon.ico request is a 404


def test_the_preview_shows_the_decision_neutrally_and_steps_through_states(staff_site, new_page):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page = new_page(width=width, height=900)
        log_in(page, staff_site)
        page.goto(staff_site.url + "/admin-preview/loan/?version=1&state=under_review")

        assert page.locator(".preview-title").inner_text() == "Preview — not a real request"
        names = page.locator("ol.steps .step-name").all_inner_texts()
        assert names == ["Application received", "Under review", "Decision"]
        assert page.locator("ol.steps > li").last.locator(".step-options").inner_text() == "Approved or Declined"
        assert "Under review" in page.locator('ol.steps > li[aria-current="step"]').inner_text()
        assert page.locator("#preview-state option:checked").inner_text() == "Under review"
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"horizontal scroll at {width} px"
        page.screenshot(path=ARTIFACTS / f"progress-preview-{width}.png", full_page=True)
        assert page.problems == []

    # The picker submits with GET and keeps the version: on to each outcome of the decision.
    page.select_option("#preview-state", label="Declined")
    page.click(".preview-picker button[type=submit]")
    page.wait_for_url("**state=declined**")
    assert "version=1" in page.url
    assert page.locator("ol.steps .step-name").all_inner_texts() == ["Application received", "Under review", "Declined"]

    page.select_option("#preview-state", label="Approved")
    page.click(".preview-picker button[type=submit]")
    page.wait_for_url("**state=approved**")
    assert page.locator("ol.steps .step-name").all_inner_texts() == ["Application received", "Under review", "Approved"]
    assert page.problems == []
