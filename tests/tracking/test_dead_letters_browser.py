"""Dead letters in Debian's headless Chromium: an edited dead letter is replayed, and then applies.
Screenshots at 1280 and 390 px go to test-artifacts/; with STATUSTRACKER_UPDATE_DOCS_SCREENSHOT set, the replay
page's also becomes docs/dead-letter-replay.png."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.conftest import ROOT, load_example_model
from tests.events import ingest, order_event
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_version_diagram_browser import assert_fits
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, ProcessInstance

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page  # pages opened as a logged-in superuser


def shot(page, name: str, width: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dead-letter-{name}-{width}.png", full_page=True)


def test_an_edited_dead_letter_is_replayed_and_then_applies(admin_page):
    # Given the example model, an order received, and its payment refused for a time without an offset
    load_example_model()
    ingest(order_event("shop-1", "ORD-7", "order.placed"))
    instance = ProcessInstance.objects.get()
    instances_apply_pending(instance_ids=[instance.pk])
    payment = {**order_event("bill-1", "ORD-7", "payment.captured", amount=129.5), "occurred_at": "2026-11-26 10:00"}
    events_ingest(items=[RawEvent(json.dumps(payment).encode(), source_ref="billing.jsonl:1")], source_kind="file")
    letter = DeadLetter.objects.get()
    for width in (1280, 390):
        listing = admin_page(reverse("admin:tracking_deadletter_changelist"), width=width)
        expect(listing.locator("#result_list")).to_contain_text("must be an RFC 3339 time")
        assert_fits(listing, width)
        shot(listing, "list", width)
        detail = admin_page(reverse("admin:tracking_deadletter_change", args=[letter.pk]), width=width)
        expect(detail.locator("pre.dead-letter-raw")).to_contain_text('"occurred_at": "2026-11-26 10:00"')
        assert_fits(detail, width)
        shot(detail, "page", width)

    # When an operator opens it, checks an edit that is still wrong, then fixes it and replays it
    page = admin_page(reverse("admin:tracking_deadletter_change", args=[letter.pk]), width=1280)
    page.get_by_role("link", name="Edit and replay").click()
    body = page.get_by_label("Event (JSON)")
    expect(body).to_have_value(json.dumps(payment, indent=2))
    body.fill(body.input_value().replace('"2026-11-26 10:00"', '"26/11/2026"'))
    page.get_by_role("button", name="Check").click()
    expect(page.locator(".dead-letter-problems")).to_contain_text(
        "occurred_at: must be an RFC 3339 time with a UTC offset"
    )
    assert_fits(page, 1280)
    shot(page, "replay-problem", 1280)
    if os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "dead-letter-replay-problem-1280.png", ROOT / "docs" / "dead-letter-replay.png")
    narrow = admin_page(reverse("admin:tracking_deadletter_replay", args=[letter.pk]), width=390)
    assert_fits(narrow, 390)
    shot(narrow, "replay", 390)
    body = page.get_by_label("Event (JSON)")
    body.fill(body.input_value().replace('"26/11/2026"', '"2026-11-26T10:00:00+01:00"'))
    page.get_by_role("button", name="Replay", exact=True).click()

    # Then it is accepted into the inbox, recorded on the letter, and applying it moves the instance
    expect(page.locator(".messagelist")).to_contain_text(
        f"Dead letter #{letter.pk} replayed: accepted into the inbox as event 'bill-1'."
    )
    expect(page.locator(".field-handled_in_words")).to_contain_text("(edited): Accepted into the inbox.")
    expect(page.get_by_role("link", name="Edit and replay")).to_have_count(0)
    shot(page, "replayed", 1280)
    instances_apply_pending(instance_ids=[instance.pk])
    instance.refresh_from_db()
    assert instance.state == "paid"
    story = admin_page(reverse("admin:tracking_processinstance_change", args=[instance.pk]), width=1280)
    expect(story.locator("#content")).to_contain_text("Payment confirmed")
    assert page.problems == []
