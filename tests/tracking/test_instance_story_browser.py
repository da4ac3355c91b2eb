"""An instance's page in Debian's headless Chromium: the story with a parked and an ignored event, and
the diagram with the state it is in and the way it came. Screenshots go to test-artifacts/; with
STATUSTRACKER_UPDATE_DOCS_SCREENSHOT set, the 1280-px one also becomes docs/instance.png."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.tracking import test_customer_page_browser, test_designer_browser, test_version_diagram_browser
from tests.tracking.test_instance_story import order_a
from tests.tracking.test_version_diagram_browser import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.integration]

browser = test_customer_page_browser.browser
admin_page = test_version_diagram_browser.admin_page


def test_the_story_shows_a_parked_and_an_ignored_event_and_the_diagram_the_way_it_came(example_model, admin_page):
    instance = order_a()
    page = admin_page(reverse("admin:tracking_processinstance_change", args=[instance.pk]))

    story = page.locator(".instance-story")
    expect(story.locator(".story-parked")).to_contain_text("carrier.delivered")
    expect(story.locator(".story-parked")).to_contain_text("expires")
    expect(story.locator(".story-ignored")).to_contain_text("payment.captured")
    expect(story.locator(".story-applied").first).to_contain_text("created in Order received")
    expect(page.locator(".instance-counts")).to_contain_text("1 duplicate dropped")

    expect(page.locator(".model-diagram-drawn svg [data-state]").first).to_be_attached()
    assert page.locator("svg [data-state=paid]").get_attribute("class").split() >= ["node"]
    assert "current" in page.locator("svg [data-state=paid]").get_attribute("class")
    assert "visited" in page.locator("svg [data-state=received]").get_attribute("class")
    assert page.locator("svg g.edge.taken").count() == 1

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, width)
        test_designer_browser.screenshot(page, f"instance-{width}.png", docs="instance.png" if width == 1280 else None)
    assert not page.problems
