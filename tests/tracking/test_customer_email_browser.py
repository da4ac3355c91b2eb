"""The customer page's email opt-in in headless Chromium: the card on the page, the form page at
1280 and 390 px (screenshots in test-artifacts/), and a subscription made in the browser under the
form page's policy with no console error, JavaScript on and off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from models_registry.models import StatusModel
from tests.tracking.test_customer_page_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    browser,
    new_page,
    order,
    site,
)
from tracking.models import CustomerEmailSettings, EmailSubscription

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def email_site(site):  # noqa: F811 (the fixture imported above)
    CustomerEmailSettings.objects.create(model=StatusModel.objects.get(key="order-fulfilment"))
    cache.clear()
    return site


@pytest.mark.parametrize("javascript", [True, False])
@pytest.mark.parametrize("width", [1280, 390])
def test_a_customer_asks_for_email_updates_from_the_page(email_site, new_page, width, javascript):  # noqa: F811
    now = datetime.now(tz=UTC).replace(microsecond=0)
    path = order("ORD-1", 3, [now - timedelta(hours=h) for h in (30, 29, 10)])
    page = new_page(width=width, javascript=javascript)

    page.goto(email_site.url + path)
    card = page.locator("section.email-updates")
    expect(card).to_be_visible()
    if javascript:
        page.screenshot(path=ARTIFACTS / f"customer-page-email-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    card.get_by_role("link", name="Email me about changes").click()
    expect(page.get_by_role("heading", name="Email me about changes")).to_be_visible()
    if javascript:
        page.screenshot(path=ARTIFACTS / f"customer-email-form-{width}.png", full_page=True)
    page.get_by_label("Your email address").fill(f"customer-{width}@example.com")
    page.get_by_role("button", name="Email me about changes").click()

    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    assert f"customer-{width}@example.com" not in page.content()
    assert EmailSubscription.objects.filter(email=f"customer-{width}@example.com", confirmed_at=None).exists()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.problems == []  # Chromium reports policy violations here
