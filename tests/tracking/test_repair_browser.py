"""A migration with its dry run, in Debian's headless Chromium: an operator maps the state the new
version lacks, sees where the instances would land, and migrates them. Screenshots at 1280 and 390 px
go to test-artifacts/; with STATUSTRACKER_UPDATE_DOCS_SCREENSHOT set, the 1280-px dry run also becomes
docs/migration.png."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.events import ingest, order_event
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_designer_browser import screenshot
from tests.tracking.test_fsm import apply_all, instance
from tests.tracking.test_fsm import version_two as v2_of_example  # noqa: F401 (fixture)
from tests.tracking.test_version_diagram_browser import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.integration]

browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page  # pages opened as a logged-in superuser


@pytest.fixture
def orders_and_version_two(example_model, request):
    """A and B received, C on hold, D paid (all on v1); v2 renames on_hold to payment_problem."""
    ingest(
        *(order_event(f"{t}1", t, "order.placed") for t in "ABCD"),
        order_event("C2", "C", "payment.failed"),
        order_event("D2", "D", "payment.captured"),
    )
    apply_all()
    return request.getfixturevalue("v2_of_example")


def dry_run(page):
    mapping = page.get_by_test_id("mapping")
    expect(mapping.locator('tr[data-state="on_hold"]')).to_contain_text("v2 has no state “on_hold”")
    expect(page.get_by_label("Order received", exact=True)).to_have_value("received")
    page.get_by_label("On hold", exact=True).select_option(label="Payment problem")
    page.get_by_role("button", name="Dry run").click()
    result = page.get_by_test_id("dry-run")
    expect(result).to_contain_text("Dry run: 4 instances would move to v2")
    return result


def test_a_migration_with_its_dry_run(admin_page, orders_and_version_two):
    version_two = orders_and_version_two
    path = f"{reverse('admin:tracking_processinstance_migrate')}?model={version_two.model_id}"

    for width in (390, 1280):
        page = admin_page(path, width=width)
        expect(page.get_by_label("From version")).to_have_value("1")
        expect(page.get_by_label("To version")).to_have_value("2")

        result = dry_run(page)

        landing = result.locator("table").first.locator("tbody tr")
        assert landing.all_inner_texts() == ["Order received\t2", "Payment problem\t1", "Payment confirmed\t1"]
        assert_fits(page, width)
        screenshot(page, f"migration-dry-run-{width}.png", docs="migration.png" if width == 1280 else None)
        assert page.problems == []
    # Nothing moved by a dry run
    assert {instance(t).version.number for t in "ABCD"} == {1}

    page.get_by_label("Note").fill("on hold is now payment problem")
    page.get_by_role("button", name="Migrate 4 instances").click()

    expect(page.locator(".messagelist")).to_contain_text("Migrated 4 instances of Order fulfilment from v1 to v2")
    assert [(instance(t).version.number, instance(t).state) for t in "ABCD"] == [
        (2, "received"), (2, "received"), (2, "payment_problem"), (2, "paid"),
    ]  # fmt: skip
    assert instance("C").history.last().note == "migrated from version 1 to 2: on hold is now payment problem"
    screenshot(page, "migration-done-1280.png")
