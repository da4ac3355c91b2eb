"""Webhooks in Debian's headless Chromium: a business subscribes an endpoint in the admin with the
controls, copies the secret shown once, sends a test event to a real receiver on 127.0.0.1 (its
signature verified by the ``standardwebhooks`` package), and reads the delivery log; at 1280 and
390 px. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect
from standardwebhooks import Webhook

from tests.conftest import load_example_model
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.notify.test_delivery import deliver_all
from tests.tracking.notify.test_outbox import ship_order
from tests.tracking.test_designer_browser import screenshot
from tests.tracking.test_version_diagram_browser import assert_fits
from tracking.models import WebhookSubscription

pytestmark = [pytest.mark.browser, pytest.mark.integration]

browser = test_customer_page_browser.browser
admin_page = test_version_diagram_browser.admin_page


def test_a_subscription_is_made_in_the_admin_and_a_test_event_reaches_the_endpoint(admin_page, receiver):
    load_example_model()
    # Given the add page: the model first, then its filters
    page = admin_page(reverse("admin:tracking_webhooksubscription_add"))
    page.get_by_label("Model:").select_option(label="order-fulfilment")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("URL:").fill(receiver.url)
    page.get_by_label("Description:").fill("ERP shipping updates")
    page.get_by_label("Milestone reached").check()
    page.get_by_label("Outcome (success or failure)").check()
    page.get_by_label("States:").select_option(["shipped", "delivered"])
    page.get_by_label("Context fields in the payload:").select_option(["carrier", "tracking_number"])
    assert_fits(page, 1280)
    screenshot(page, "webhook-add-1280.png")

    page.get_by_role("button", name="Save and continue editing").click()

    # then the secret is shown once, on the subscription's page
    secret = page.locator(".webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    subscription = WebhookSubscription.objects.get()
    assert secret == subscription.secret
    assert (subscription.kinds, subscription.states) == (["milestone", "outcome"], ["shipped", "delivered"])
    assert subscription.context_fields == ["carrier", "tracking_number"]
    assert_fits(page, 1280)
    screenshot(page, "webhook-created-1280.png")

    # when a test event is sent, the endpoint gets it signed with that secret
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".messagelist")).to_contain_text("delivered: 204")
    (received,) = receiver.requests
    assert Webhook(secret).verify(received.body, received.headers)["type"] == "webhook.test"
    assert page.locator(".webhook-secret").count() == 0  # not shown again
    screenshot(page, "webhook-tested-1280.png")

    # and the changes it asked for are in the delivery log
    ship_order("A")
    deliver_all()
    log = admin_page(reverse("admin:tracking_notification_changelist"))
    expect(log.locator("#result_list tbody tr")).to_have_count(2)
    assert_fits(log, 1280)
    screenshot(log, "webhook-log-1280.png")
    for path, name in (
        (reverse("admin:tracking_webhooksubscription_change", args=[subscription.pk]), "webhook-change-390.png"),
        (reverse("admin:tracking_notification_changelist"), "webhook-log-390.png"),
    ):
        narrow = admin_page(path, width=390, height=844)
        screenshot(narrow, name)
    assert not page.problems
