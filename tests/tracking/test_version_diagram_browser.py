"""A version's diagram in Debian's headless Chromium: one element per state, counts, screenshots.

Screenshots go to test-artifacts/ for people to look at; with STATUSTRACKER_UPDATE_DOCS_SCREENSHOT
set, the 1280-px one also becomes docs/diagram.png.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from models_registry.services import model_import
from tests.conftest import ROOT, load_example_model
from tests.models_registry.test_diagram import generated_model
from tests.tracking import test_customer_page_browser
from tests.tracking.test_version_diagram import orders

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
EXAMPLE_STATES = ["received", "paid", "packed", "shipped", "delivered", "on_hold", "cancelled"]


@pytest.fixture
def admin_page(browser, live_server, transactional_db):
    """A function that opens a page of the live server as a logged-in superuser, at a width."""
    user = get_user_model().objects.create_superuser("diagram-admin", "a@example.com", "unused-password")
    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    contexts = []

    def open_page(path: str, *, width: int = 1280, height: int = 900, javascript: bool = True):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale="en-GB", java_script_enabled=javascript
        )
        contexts.append(context)
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        # Everything the page needs is served here: any other address is a failure.
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server.url)
                   else (page.problems.append(f"off-site request {route.request.url}"), route.abort()))  # fmt: skip
        page.goto(live_server.url + path)
        return page

    yield open_page
    for context in contexts:
        context.close()


def version_path(version) -> str:
    return reverse("admin:models_registry_modelversion_change", args=[version.pk])


def drawn_states(page) -> list[str]:
    expect(page.locator(".model-diagram-drawn svg")).to_be_visible()
    return page.locator("svg [data-state]").evaluate_all("nodes => nodes.map(n => n.dataset.state)")


def assert_fits(page, width: int) -> None:
    # Measured once the page's stylesheets are in: the text can be there before they are.
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways at {width}px"


def test_every_state_of_the_example_is_one_element_with_its_count(admin_page):
    version = load_example_model()
    orders(("A", "order.placed"), ("B", "order.placed"), ("B", "payment.captured"), ("C", "order.placed"))
    ARTIFACTS.mkdir(exist_ok=True)

    for width in (1280, 390):
        page = admin_page(version_path(version), width=width)

        assert sorted(drawn_states(page)) == sorted(EXAMPLE_STATES)
        received = page.locator('svg [data-state="received"]')
        expect(received).to_contain_text("Order received")
        expect(received).to_contain_text("2 instances")
        expect(page.locator('svg [data-state="paid"]')).to_contain_text("1 instance")
        expect(page.locator('svg [data-state="delivered"]')).to_contain_text("0 instances")
        assert page.locator('svg [data-state="received"]').get_attribute("class") == "node state kind-step initial"
        assert page.locator("svg .kind-success").count() == 1
        # The legend names every kind the example uses.
        for text in ("step (a milestone)", "success (terminal)", "failure (terminal)", "exception", "initial state"):
            expect(page.locator(".model-diagram-legend")).to_contain_text(text)
        # Readable, not shrunk to fit a phone: the drawing keeps 75 % of its size at least, and
        # scrolls sideways (saying so) where that is still too wide.
        scale = page.locator(".model-diagram-drawn svg").evaluate(
            "svg => svg.getBoundingClientRect().width / (svg.viewBox.baseVal.width * 4 / 3)"
        )
        assert scale >= 0.75
        expect(page.locator("[data-diagram-scroll-hint]")).to_be_visible(visible=width < 600)
        assert_fits(page, width)
        shot = ARTIFACTS / f"version-diagram-{width}.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000
        assert page.problems == []
    if os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "version-diagram-1280.png", ROOT / "docs" / "diagram.png")


def test_a_30_state_model_is_drawn_whole(admin_page):
    version, _ = model_import(document=generated_model(30))

    page = admin_page(version_path(version), width=1280)

    assert sorted(drawn_states(page)) == sorted(state["key"] for state in generated_model(30)["states"])
    expect(page.locator("svg .any-state")).to_have_count(1)
    assert_fits(page, 1280)
    page.screenshot(path=ARTIFACTS / "version-diagram-30-states-1280.png", full_page=True)
    page.screenshot(path=ARTIFACTS / "version-diagram-30-states-1280-top.png")
    assert page.problems == []


def test_without_javascript_the_states_are_listed_as_text(admin_page):
    version = load_example_model()

    page = admin_page(version_path(version), javascript=False)

    expect(page.locator(".model-diagram-note")).to_be_visible()
    page.locator(".model-diagram-text summary").click()
    rows = page.locator(".model-diagram-text table").first.locator("tbody tr")
    expect(rows).to_have_count(len(EXAMPLE_STATES))
    assert rows.first.locator("td").all_inner_texts() == ["Order received received", "step", "initial", "0"]
