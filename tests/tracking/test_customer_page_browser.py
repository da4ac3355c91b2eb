"""The customer page in Debian's headless Chromium, driven by Playwright, against a live server.

Chromium comes from the distribution (``bin/setup --dev`` installs it); Playwright never
downloads a browser here. Screenshots go to test-artifacts/ for people to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from api_access.services import token_create
from tests.conftest import ROOT, load_example_model
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import ProcessInstance
from tracking.progress.links import instance_tracking_url

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
MODEL = "order-fulfilment"
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run bin/setup --dev (it installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, which Django takes for an async
    # context; the ORM calls that tests (and their database teardown) make here are synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(browser, live_server, transactional_db, settings):
    """A fresh database behind the live server, the example model loaded, quick polling."""
    settings.STATUSTRACKER_PAGE_POLL_SECONDS = 1
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 5
    cache.clear()
    load_example_model()
    yield live_server
    cache.clear()


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(*, width=1280, height=900, color_scheme="light", javascript=True, locale="en-GB", timezone="UTC"):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
            java_script_enabled=javascript,
            locale=locale,
            timezone_id=timezone,
        )
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()


_ids = iter(range(10**9))


def envelope(transaction_id: str, event_type: str, at: datetime, **data) -> dict:
    return {
        "event_id": f"b-{next(_ids)}",
        "model_id": MODEL,
        "transaction_id": transaction_id,
        "event_type": event_type,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def apply(*events: dict) -> None:
    events_ingest(items=[RawEvent(e) for e in events], source_kind="api")
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))


HAPPY_PATH = [
    ("order.placed", {}),
    ("payment.captured", {}),
    ("warehouse.packed", {}),
    ("carrier.picked_up", {"carrier": "DHL Express", "tracking_number": "JD014600003828419"}),
    ("carrier.delivered", {}),
]


def order(transaction_id: str, upto: int, times: list[datetime]) -> str:
    """An order through the first ``upto`` events of the happy path; returns its page URL path."""
    apply(*[envelope(transaction_id, name, times[i], **data) for i, (name, data) in enumerate(HAPPY_PATH[:upto])])
    instance = ProcessInstance.objects.get(transaction_id=transaction_id)
    return "/" + instance_tracking_url(instance=instance).split("/", 3)[3]


def history_for_estimates(now: datetime) -> None:
    """Eight delivered orders, so that the page can show an expected delivery date."""
    for i in range(8):
        start = now - timedelta(days=30 - i)
        hours = [0, 1, 20, 30, 30 + 24 + 6 * i]
        order(f"PAST-{i}", 5, [start + timedelta(hours=h) for h in hours])


def test_a_link_shows_the_steps_in_the_viewers_locale(site, new_page):
    now = datetime.now(tz=UTC).replace(microsecond=0)
    history_for_estimates(now)
    path = order("ORD-1", 4, [now - timedelta(hours=h) for h in (30, 29, 10, 2)])

    page = new_page(locale="de-DE", timezone="Europe/Berlin")
    page.goto(site.url + path)

    steps = page.locator("ol.steps > li")
    assert steps.count() == 5
    assert steps.locator(".step-name").all_inner_texts() == [
        "Order received",
        "Payment confirmed",
        "Packed",
        "On its way",
        "Delivered",
    ]
    current = page.locator('ol.steps > li[aria-current="step"]')
    assert current.count() == 1
    assert "On its way" in current.inner_text()
    assert page.locator("progress").get_attribute("aria-valuetext") == "Schritt 4 von 5: On its way"
    # The browser rewrote the server's UTC times in its own locale and time zone.
    shipped_at = (now - timedelta(hours=2)).astimezone(ZoneInfo("Europe/Berlin"))
    step_time = current.locator("time").inner_text()
    assert shipped_at.strftime("%H:%M") in step_time
    assert shipped_at.strftime("%d.%m.%Y") in step_time
    assert "UTC" not in step_time
    assert page.locator(".estimate-range time").count() == 2
    assert "JD014600003828419" in page.locator(".details").inner_text()
    assert page.problems == []


def test_the_page_follows_an_event_posted_to_the_api_without_a_reload(site, new_page, start_worker, django_user_model):
    now = datetime.now(tz=UTC).replace(microsecond=0)
    path = order("ORD-2", 2, [now - timedelta(hours=3), now - timedelta(hours=2)])
    user = django_user_model.objects.create_user(username="shop")
    _, key = token_create(name="shop", user=user, can_produce=True, can_read=False)
    start_worker()

    page = new_page()
    page.goto(site.url + path)
    assert page.locator("h1").inner_text() == "Payment confirmed"
    page.evaluate("window.loadedOnce = 'still the same document'")

    request = urllib.request.Request(
        site.url + "/api/v1/events",
        data=json.dumps(envelope("ORD-2", "warehouse.packed", now)).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202

    expect(page.locator("h1")).to_have_text("Packed", timeout=60_000)
    assert page.evaluate("window.loadedOnce") == "still the same document"
    assert "Packed" in page.locator('li[aria-current="step"]').inner_text()
    assert page.locator("progress").get_attribute("aria-valuetext") == "Step 3 of 5: Packed"
    assert page.locator("#announcement").inner_text() == "Status changed: Packed."
    assert page.locator("#announcement").get_attribute("aria-live") == "polite"
    assert page.problems == []


def test_an_exception_shows_its_banner_over_the_last_step(site, new_page):
    now = datetime.now(tz=UTC)
    apply(
        envelope("ORD-3", "order.placed", now - timedelta(hours=1)),
        envelope("ORD-3", "payment.failed", now - timedelta(minutes=30)),
    )
    instance = ProcessInstance.objects.get(transaction_id="ORD-3")

    page = new_page(width=375)
    page.goto(instance_tracking_url(instance=instance).replace("http://localhost:8000", site.url))

    banner = page.locator('li[aria-current="step"] .banner')
    assert banner.is_visible()
    assert "On hold" in banner.inner_text()
    assert "There is a problem with your payment; we have emailed you." in banner.inner_text()
    assert "Order received" in page.locator('li[aria-current="step"] .step-label').inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "customer-page-exception-375.png", full_page=True)
    assert page.problems == []


def _axe(page) -> list[dict]:
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_violations(site, new_page, color_scheme):
    assert AXE.exists(), "axe-core is missing: run bin/setup (npm ci)"
    now = datetime.now(tz=UTC).replace(microsecond=0)
    history_for_estimates(now)
    pages = {
        "active": order("A-1", 3, [now - timedelta(hours=h) for h in (5, 4, 1)]),
        "delivered": order("A-2", 5, [now - timedelta(hours=h) for h in (50, 49, 30, 20, 1)]),
    }
    apply(
        envelope("A-3", "order.placed", now - timedelta(hours=2)),
        envelope("A-3", "payment.failed", now - timedelta(hours=1)),
        envelope("A-4", "order.placed", now - timedelta(hours=2)),
        envelope("A-4", "order.cancelled", now - timedelta(hours=1), reason="out of stock"),
    )
    for name in ("A-3", "A-4"):
        instance = ProcessInstance.objects.get(transaction_id=name)
        pages[name] = "/" + instance_tracking_url(instance=instance).split("/", 3)[3]

    page = new_page(color_scheme=color_scheme)
    found = {}
    for name, path in pages.items():
        page.goto(site.url + path)
        found[name] = _axe(page)
    page.goto(site.url + "/track/not-a-link/")
    found["not found"] = _axe(page)
    page.problems = [p for p in page.problems if "404" not in p]  # the 404 page's own status line

    assert page.problems == []

    assert found == {name: [] for name in found}


def test_layout_fits_from_320_px_and_screenshots(site, new_page):
    now = datetime.now(tz=UTC).replace(microsecond=0)
    history_for_estimates(now)
    path = order("ORD-4", 4, [now - timedelta(hours=h) for h in (30, 29, 10, 2)])
    ARTIFACTS.mkdir(exist_ok=True)

    for width, scheme in [(320, "light"), (375, "light"), (375, "dark"), (768, "light"), (1280, "light"),
                          (1280, "dark")]:  # fmt: skip
        page = new_page(width=width, height=800, color_scheme=scheme)
        page.goto(site.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"horizontal scrolling at {width}px"
        # Every step label is readable: on screen and not clipped to nothing.
        for box in [page.locator(".step-label").nth(i).bounding_box() for i in range(5)]:
            assert box["width"] > 40
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= width
        if width in (375, 1280):
            shot = ARTIFACTS / f"customer-page-{width}{'-dark' if scheme == 'dark' else ''}.png"
            page.screenshot(path=shot, full_page=True)
            assert shot.stat().st_size > 10_000
        assert page.problems == []
    docs_copy = os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT")
    if docs_copy:
        shutil.copyfile(ARTIFACTS / "customer-page-1280.png", ROOT / "docs" / "screenshot.png")


def test_without_javascript_the_server_renders_everything(site, new_page):
    now = datetime.now(tz=UTC).replace(microsecond=0)
    path = order("ORD-5", 3, [now - timedelta(hours=h) for h in (5, 4, 1)])

    page = new_page(javascript=False)
    page.goto(site.url + path)

    assert page.locator("ol.steps > li").count() == 5
    assert page.locator("h1").inner_text() == "Packed"
    assert page.locator('li[aria-current="step"]').count() == 1
    assert page.locator(".noscript").is_visible()
    # Times stay as the server wrote them (UTC), readable without the script.
    assert page.locator('li[aria-current="step"] time').inner_text().endswith("UTC")
