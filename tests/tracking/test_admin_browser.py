"""The front page and the operator's lists in Debian's headless Chromium: they fit 1280 px (and a
phone) with long values in every column. Screenshots go to test-artifacts/ for people to look at."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.conftest import ROOT, load_example_model
from tests.events import order_event
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_admin_lists import send
from tracking.models import DeadLetter, ShardLease

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page
assert_fits = test_version_diagram_browser.assert_fits


@pytest.fixture
def busy_site(transactional_db):
    """Instances, events, dead letters and leases with the longest values operators will meet."""
    load_example_model()
    send(
        *[order_event(f"e-{i}", f"SIM-2026-11-30-{i:04d}", "order.placed") for i in range(8)],
        order_event("e-long-" + "x" * 110, "SIM-" + "7" * 190, "order.placed"),
        order_event("e-pay", "SIM-2026-11-30-0001", "payment.captured"),
        order_event("e-fail", "SIM-2026-11-30-0002", "payment.failed"),
    )
    DeadLetter.objects.create(
        source_kind="kinesis",
        source_ref="statustracker-demo/shardId-000000000001/" + "4" * 56,
        raw=b"{",
        reason="Unknown model 'parcel-deliverry': no published version has this id. " * 4,
        field="model_id",
    )
    ShardLease.objects.create(
        stream="statustracker-demo-with-a-long-name",
        shard_id="shardId-000000000001",
        owner="consumer-ip-10-0-3-117.eu-west-1.compute.internal:48213:" + "a" * 32,
        records_processed=123456789,
        millis_behind_latest=1234567,
        records_per_second=1234.5,
        last_checkpoint_at=datetime(2026, 11, 30, 10, 47, 12, tzinfo=UTC),
        lease_expires_at=datetime(2026, 11, 30, 10, 47, 42, tzinfo=UTC),
    )


LISTS = ["processinstance", "inboxevent", "deadletter", "shardlease"]


def test_the_lists_fit_1280_px_and_a_phone(busy_site, admin_page):
    for width in (1280, 390):
        for name in LISTS:
            page = admin_page(reverse(f"admin:tracking_{name}_changelist"), width=width)

            page.screenshot(path=ARTIFACTS / f"admin-{name}-{width}.png", full_page=True)
            assert_fits(page, width)
            if width == 1280:
                # The table itself fits beside the filters: nothing to scroll sideways inside it.
                overflow = page.locator("#changelist .results").evaluate("e => e.scrollWidth - e.clientWidth")
                assert overflow <= 0, f"the {name} list scrolls sideways at 1280px"
            assert page.problems == []


def test_the_front_page_fits_1280_px_and_a_phone(admin_page, transactional_db):
    for width in (1280, 390):
        page = admin_page("/", width=width)

        assert_fits(page, width)
        assert page.locator("h1").inner_text() == "Where is my request?"
        page.screenshot(path=ARTIFACTS / f"home-{width}.png", full_page=True)
        assert page.problems == []
