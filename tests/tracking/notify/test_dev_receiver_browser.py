"""make run's receiver page (/dev/webhooks/) in Debian's headless Chromium, at 1280 and 390 px, after
real deliveries and one refused request. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.notify.test_dev_receiver import receiver_on, receiver_subscription  # noqa: F401 (fixture)
from tests.tracking.notify.test_outbox import ship_order
from tests.tracking.test_designer_browser import screenshot
from tests.tracking.test_version_diagram_browser import assert_fits
from tracking.models import Notification
from tracking.notify import dev_receiver
from tracking.notify.delivery import deliver_pending
from tracking.notify.sender import post

pytestmark = [pytest.mark.browser, pytest.mark.integration]

browser = test_customer_page_browser.browser
admin_page = test_version_diagram_browser.admin_page


def test_the_receiver_page_lists_deliveries_at_both_widths(example_model, receiver_on, admin_page, live_server):  # noqa: F811
    subscription = receiver_subscription(live_server.url)
    ship_order("ORD-1001")
    for instance_id in Notification.objects.values_list("instance_id", flat=True).distinct():
        deliver_pending(subscription_id=subscription.pk, instance_id=instance_id)
    refused = post(live_server.url + dev_receiver.RECEIVE_PATH, b"{}", {"webhook-id": "msg_forged"})
    assert refused.status_code == 401

    for width in (1280, 390):
        page = admin_page("/dev/webhooks/", width=width)

        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(6)
        expect(rows.first).to_contain_text("msg_forged")
        expect(rows.nth(1)).to_contain_text("shipped → delivered")
        expect(page.get_by_title("Signature verified")).to_have_count(5)
        assert_fits(page, width)
        assert page.problems == []
        screenshot(page, f"dev-webhooks-{width}.png")
