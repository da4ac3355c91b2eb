"""The customer page through Django's test client: links, what it shows, security, live fragment, estimate."""

from __future__ import annotations

import html
import json
import random
import re
import statistics
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from models_registry.services import model_import
from tests.conftest import load_example_model
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import ProcessInstance, TransitionRecord
from tracking.progress.customer_page import HistoryRow, build_page, percentile
from tracking.progress.links import (
    instance_tracking_link_renew,
    instance_tracking_url,
    tracking_token,
    tracking_token_nonce,
)
from tracking.progress.views import _stamp

pytestmark = pytest.mark.django_db

MODEL = "order-fulfilment"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def send(*events: dict) -> None:
    """Ingest events and apply them, as a worker would (the service the worker task calls)."""
    results = events_ingest(items=[RawEvent(e, f"test-{i}") for i, e in enumerate(events)], source_kind="api")
    assert all(r.status == "accepted" for r in results), results
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("id", flat=True)))


_counter = iter(range(10**9))


def event(transaction_id: str, event_type: str, at: datetime | None = None, *, model=MODEL, **data) -> dict:
    envelope = {
        "event_id": f"e-{next(_counter)}",
        "model_id": model,
        "transaction_id": transaction_id,
        "event_type": event_type,
        "source": "billing-system-internal",
        "data": data,
    }
    if at is not None:
        envelope["occurred_at"] = at.isoformat().replace("+00:00", "Z")
    return envelope


def order_at(transaction_id: str, last: str, *, start: datetime = T0) -> ProcessInstance:
    """An order moved through the example model's happy path up to ``last``."""
    steps = [
        ("order.placed", {}),
        ("payment.captured", {}),
        ("warehouse.packed", {}),
        ("carrier.picked_up", {"carrier": "DHL", "tracking_number": "JD0146"}),
        ("carrier.delivered", {}),
    ]
    names = [name for name, _ in steps]
    chosen = steps[: names.index(last) + 1]
    send(*[event(transaction_id, name, start + timedelta(hours=i), **data) for i, (name, data) in enumerate(chosen)])
    return ProcessInstance.objects.get(transaction_id=transaction_id)


def path_of(url: str) -> str:
    return urlsplit(url).path


def page(client, instance, **kwargs):
    return client.get(path_of(instance_tracking_url(instance=instance, **kwargs)))


def text(response) -> str:
    """The visible text of a response, tags stripped, whitespace collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def steps(response) -> list[tuple[str, bool]]:
    """(class attribute, is aria-current) of each <li> of the milestone list, in order."""
    body = response.content.decode()
    ol = re.search(r'<ol class="steps">(.*?)</ol>', body, flags=re.S).group(1)
    return [(m.group(1), bool(m.group(2))) for m in re.finditer(r'<li class="([^"]+)"( aria-current="step")?', ol)]


def step_labels(response) -> list[str]:
    body = response.content.decode()
    return [
        re.sub(r"\s+", " ", html.unescape(m)).strip()
        for m in re.findall(r'<span class="step-name">([^<]*)</span>', body)
    ]


# --- links ------------------------------------------------------------------------------------


def test_a_link_opens_the_page_and_carries_neither_transaction_nor_database_id(client):
    load_example_model()
    instance = order_at("ORD-555123", "warehouse.packed")
    url = instance_tracking_url(instance=instance)

    assert url.startswith("http://localhost:8000/track/")
    token = path_of(url).split("/")[2]
    assert "ORD-555123" not in url
    assert f"/{instance.pk}/" not in url
    assert tracking_token_nonce(token) == instance.link_nonce
    response = client.get(path_of(url))
    assert response.status_code == 200
    assert "Packed" in text(response)


def test_the_api_style_url_uses_the_host_of_the_request(rf, settings):
    settings.ALLOWED_HOSTS = ["track.example.com"]
    load_example_model()
    instance = order_at("ORD-1", "order.placed")
    request = rf.get("/", HTTP_HOST="track.example.com", secure=True)
    assert instance_tracking_url(instance=instance, request=request).startswith("https://track.example.com/track/")


def test_the_api_returns_a_working_tracking_url_that_revocation_replaces(client, api_client):
    load_example_model()
    instance = order_at("ORD-1", "warehouse.packed")
    reader = api_client(read=True)

    first = reader.get(f"/api/v1/instances/{MODEL}/ORD-1").json()["tracking_url"]
    again = reader.get(f"/api/v1/instances/{MODEL}/ORD-1").json()["tracking_url"]

    assert first == again
    assert first.startswith("http://testserver/track/")
    assert "Packed" in text(client.get(path_of(first)))
    instance_tracking_link_renew(instance_id=instance.pk)
    renewed = reader.get(f"/api/v1/instances/{MODEL}/ORD-1").json()["tracking_url"]
    assert renewed != first
    assert client.get(path_of(first)).status_code == 404
    assert client.get(path_of(renewed)).status_code == 200


def _not_found_bodies(client, *paths):
    responses = [client.get(p) for p in paths]
    assert [r.status_code for r in responses] == [404] * len(paths)
    return {r.content for r in responses}


def test_tampered_expired_revoked_and_unknown_links_get_the_same_plain_404(client):
    load_example_model()
    instance = order_at("ORD-1", "payment.captured")
    good = path_of(instance_tracking_url(instance=instance))
    token = good.split("/")[2]
    nonce, signature = token.split(":")
    flipped = nonce[:-1] + ("A" if nonce[-1] != "A" else "B")

    tampered_nonce = f"/track/{flipped}:{signature}/"
    tampered_signature = f"/track/{nonce}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}/"
    unsigned = f"/track/{nonce}/"
    expired = path_of(instance_tracking_url(instance=instance, expires_in=timedelta(seconds=-1)))
    unknown_nonce = f"/track/{tracking_token(nonce='x' * 22)}/"
    garbage = "/track/%3Cscript%3E/"
    never_a_page = "/no-such-page/"

    old = good
    instance_tracking_link_renew(instance_id=instance.pk)
    instance.refresh_from_db()
    renewed = path_of(instance_tracking_url(instance=instance))

    bodies = _not_found_bodies(
        client, tampered_nonce, tampered_signature, unsigned, expired, unknown_nonce, garbage, never_a_page, old
    )
    assert len(bodies) == 1, "every bad link must look exactly like a page that does not exist"
    body = bodies.pop().decode()
    assert "Page not found" in body
    assert nonce not in body
    assert "ORD-1" not in body
    # The live fragment of a bad link is the same 404.
    assert _not_found_bodies(client, f"/track/{flipped}:{signature}/live", old + "live") == {
        client.get(never_a_page).content
    }
    # The new link works.
    assert client.get(renewed).status_code == 200


def test_an_expiring_link_works_until_it_expires():
    token = tracking_token(nonce="abc", expires_in=timedelta(hours=1))
    assert tracking_token_nonce(token) == "abc"
    issued = datetime.now(tz=UTC).timestamp()
    assert tracking_token_nonce(token, now=issued + 3500) == "abc"
    assert tracking_token_nonce(token, now=issued + 3601) is None


def test_links_do_not_expire_by_default_and_the_setting_makes_them(client, settings):
    load_example_model()
    instance = order_at("ORD-1", "order.placed")
    plain = path_of(instance_tracking_url(instance=instance)).split("/")[2]
    assert "." not in plain.split(":")[0]
    settings.STATUSTRACKER_TRACKING_LINK_MAX_AGE = 60
    expiring = path_of(instance_tracking_url(instance=instance)).split("/")[2]
    assert "." in expiring.split(":")[0]
    assert tracking_token_nonce(expiring, now=datetime.now(tz=UTC).timestamp() + 61) is None
    assert client.get(f"/track/{expiring}/").status_code == 200


def test_renewing_a_link_does_not_touch_what_the_customer_sees():
    load_example_model()
    instance = order_at("ORD-1", "order.placed")
    before = (instance.updated_at, instance.state, instance.link_nonce)
    instance_tracking_link_renew(instance_id=instance.pk)
    instance.refresh_from_db()
    assert (instance.updated_at, instance.state) == before[:2]
    assert instance.link_nonce != before[2]


def test_an_instance_waiting_for_its_start_event_has_no_page(client):
    load_example_model()
    # A payment before the order: the instance row is reserved, the event parked.
    send(event("ORD-9", "payment.captured"))
    instance = ProcessInstance.objects.get(transaction_id="ORD-9")
    assert instance.state == ""
    assert page(client, instance).status_code == 404


# --- what the page shows -------------------------------------------------------------------------


def test_the_page_shows_the_model_the_status_and_the_steps_in_order(client):
    load_example_model()
    instance = order_at("ORD-1", "warehouse.packed")

    response = page(client, instance)
    body = text(response)

    assert "Order fulfilment" in body
    assert "Packed" in body
    assert "Your items are packed and waiting for the carrier." in body
    assert step_labels(response) == ["Order received", "Payment confirmed", "Packed", "On its way", "Delivered"]
    assert steps(response) == [
        ("step step-done", False),
        ("step step-done", False),
        ("step step-current", True),
        ("step step-upcoming", False),
        ("step step-upcoming", False),
    ]
    assert 'aria-valuetext="Step 3 of 5: Packed"' in response.content.decode()
    assert '<progress class="progress" max="5" value="3"' in response.content.decode()
    # Done steps show when they were reached (the events' occurred_at), the others do not.
    times = re.findall(r'<p class="step-time"><time datetime="([^"]+)"', response.content.decode())
    assert times == [(T0 + timedelta(hours=h)).isoformat() for h in range(3)]
    assert "Last updated" in body


def test_no_staff_data_on_the_page(client):
    load_example_model()
    instance = order_at("ORD-4711", "carrier.picked_up")
    event_ids = list(TransitionRecord.objects.filter(instance=instance).values_list("event__event_id", flat=True))

    content = page(client, instance).content.decode()

    for secret in ["ORD-4711", "billing-system-internal", "on_hold", "picked_up", "warehouse", *event_ids]:
        assert secret not in content


def test_display_fields_appear_once_set(client):
    load_example_model()
    instance = order_at("ORD-1", "warehouse.packed")
    assert "Tracking number" not in text(page(client, instance))

    send(event("ORD-1", "carrier.picked_up", T0 + timedelta(hours=5), carrier="UPS", tracking_number="1Z999"))
    body = text(page(client, instance))
    assert "Carrier UPS" in body
    assert "Tracking number 1Z999" in body


def test_an_exception_is_a_banner_over_the_last_step_reached(client):
    load_example_model()
    send(event("ORD-1", "order.placed", T0), event("ORD-1", "payment.failed", T0 + timedelta(minutes=5)))
    instance = ProcessInstance.objects.get(transaction_id="ORD-1")

    response = page(client, instance)
    content = response.content.decode()

    assert steps(response)[0] == ("step step-current step-exception", True)
    current_li = re.search(r'aria-current="step">(.*?)</li>', content, flags=re.S).group(1)
    assert 'class="banner"' in current_li
    assert "There is a problem with your payment; we have emailed you." in current_li
    assert content.count('class="banner"') == 1
    assert '<h1 id="status-heading">On hold</h1>' in content

    # Leaving the exception removes the banner.
    send(event("ORD-1", "payment.captured", T0 + timedelta(hours=1)))
    assert 'class="banner"' not in page(client, instance).content.decode()


def test_success_is_shown_as_completed(client):
    load_example_model()
    instance = order_at("ORD-1", "carrier.delivered")

    response = page(client, instance)

    assert [c for c, _ in steps(response)] == ["step step-done"] * 4 + ["step step-done step-current"]
    assert steps(response)[-1][1] is True
    assert "Completed" in text(response)
    assert 'aria-valuetext="Step 5 of 5: Delivered"' in response.content.decode()
    # A finished instance is not polled.
    assert "hx-trigger" not in response.content.decode()


def test_failure_is_shown_as_the_end_and_later_steps_as_not_reached(client):
    load_example_model()
    send(
        event("ORD-1", "order.placed", T0),
        event("ORD-1", "payment.captured", T0 + timedelta(hours=1)),
        event("ORD-1", "order.cancelled", T0 + timedelta(hours=2), reason="customer"),
    )
    instance = ProcessInstance.objects.get(transaction_id="ORD-1")

    response = page(client, instance)

    assert step_labels(response) == ["Order received", "Payment confirmed", "Packed", "On its way", "Cancelled"]
    assert [c for c, _ in steps(response)] == [
        "step step-done",
        "step step-done",
        "step step-not_reached",
        "step step-not_reached",
        "step step-failed step-current",
    ]
    assert "Ended here" in text(response)
    assert "Expected completion" not in text(response)


GROUPED = {
    "id": "claims",
    "name": "Insurance claim",
    "initial_state": "filed",
    "states": [
        {"key": "filed", "label": "Claim filed"},
        {"key": "triage", "label": "Triage"},
        {"key": "assessment", "label": "Assessment", "expected_within": "PT1H"},
        {"key": "paid_out", "label": "Paid out", "kind": "success"},
    ],
    "transitions": [
        {"event": "claim.triaged", "from": ["filed"], "to": "triage"},
        {"event": "claim.assessed", "from": ["triage"], "to": "assessment"},
        {"event": "claim.paid", "from": ["assessment"], "to": "paid_out"},
    ],
    "milestones": [
        {"key": "received", "label": "Received", "states": ["filed"]},
        {
            "key": "review",
            "label": "In review",
            "description": "An expert looks at your claim.",
            "states": ["triage", "assessment"],
        },
    ],
}


def test_milestone_groups_are_one_step_and_name_the_status(client):
    model_import(document=GROUPED)
    send(
        event("C-1", "claim.filed", T0, model="claims"),
        event("C-1", "claim.triaged", T0 + timedelta(minutes=1), model="claims"),
        event("C-1", "claim.assessed", T0 + timedelta(minutes=2), model="claims"),
    )
    instance = ProcessInstance.objects.get(transaction_id="C-1")

    response = page(client, instance)

    assert step_labels(response) == ["Received", "In review", "Paid out"]
    assert steps(response)[1] == ("step step-current", True)
    assert '<h1 id="status-heading">In review</h1>' in response.content.decode()
    assert "An expert looks at your claim." in text(response)


def test_a_step_past_its_expected_time_is_marked_delayed(client):
    model_import(document=GROUPED)
    now = datetime.now(tz=UTC)
    send(
        event("LATE", "claim.filed", now - timedelta(hours=3), model="claims"),
        event("LATE", "claim.triaged", now - timedelta(hours=3), model="claims"),
        event("LATE", "claim.assessed", now - timedelta(hours=2), model="claims"),
        event("ON-TIME", "claim.filed", now - timedelta(minutes=30), model="claims"),
        event("ON-TIME", "claim.triaged", now - timedelta(minutes=30), model="claims"),
        event("ON-TIME", "claim.assessed", now - timedelta(minutes=20), model="claims"),
    )
    late = page(client, ProcessInstance.objects.get(transaction_id="LATE"))
    on_time = page(client, ProcessInstance.objects.get(transaction_id="ON-TIME"))

    assert "taking longer than expected" in text(late)
    expected_by = (now - timedelta(hours=2) + timedelta(hours=1)).replace(microsecond=0)
    assert f'<time datetime="{expected_by.isoformat()}"' in late.content.decode()
    assert "taking longer than expected" not in text(on_time)


# --- security ---------------------------------------------------------------------------------


def test_script_in_event_data_is_escaped(client):
    load_example_model()
    order_at("XSS", "warehouse.packed")
    send(event("XSS", "carrier.picked_up", carrier="<script>alert(1)</script>", tracking_number='"><img src=x>'))

    content = page(client, ProcessInstance.objects.get(transaction_id="XSS")).content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<img src=x>" not in content
    assert "&quot;&gt;&lt;img src=x&gt;" in content


def test_html_in_model_labels_is_escaped(client):
    document = {
        **GROUPED,
        "id": "html-model",
        "name": "<b>Bold</b> claims",
        "states": [
            {"key": "filed", "label": "<i>Filed</i>", "description": "<script>steal()</script>"},
            *GROUPED["states"][1:],
        ],
        "milestones": [],
    }
    model_import(document=document)
    send(event("H-1", "claim.filed", model="html-model"))

    content = page(client, ProcessInstance.objects.get(transaction_id="H-1")).content.decode()

    for raw in ["<b>Bold</b>", "<i>Filed</i>", "<script>steal()</script>"]:
        assert raw not in content
    assert "&lt;b&gt;Bold&lt;/b&gt; claims" in content
    assert "&lt;i&gt;Filed&lt;/i&gt;" in content
    assert "&lt;script&gt;steal()&lt;/script&gt;" in content


def _csp(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


def test_the_page_sends_a_strict_content_security_policy(client):
    load_example_model()
    instance = order_at("ORD-1", "payment.captured")
    url = path_of(instance_tracking_url(instance=instance))

    for response in [client.get(url), client.get(url + "live"), client.get(url.replace("/track/", "/track/x"))]:
        policy = _csp(response)
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        for sources in policy.values():
            assert all(s in ("'self'", "'none'") for s in sources), sources
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response.headers["Cache-Control"]


def test_the_page_has_no_inline_script_style_or_handler(client):
    """What the policy forbids must not be needed: every script and style comes from a file."""
    load_example_model()
    send(event("ORD-1", "order.placed", T0), event("ORD-1", "payment.failed", T0))
    content = page(client, ProcessInstance.objects.get(transaction_id="ORD-1")).content.decode()

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", content, flags=re.S)
    assert scripts
    assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in content
    assert " style=" not in content
    assert not re.search(r"\son[a-z]+=", content)
    assert not re.search(r'(src|href)="(https?:)?//', content)


def test_transaction_ids_cannot_be_used_in_a_public_url(client):
    load_example_model()
    instance = order_at("ORD-1", "order.placed")
    for path in ["/track/ORD-1/", f"/track/{instance.pk}/", f"/track/{MODEL}/ORD-1/", f"/track/{instance.link_nonce}/"]:
        assert client.get(path).status_code == 404


# --- live fragment and queries ------------------------------------------------------------------


def live_url(response) -> str:
    return html.unescape(re.search(r'hx-get="([^"]+)"', response.content.decode()).group(1))


def test_the_live_fragment_is_empty_until_something_changes(client):
    load_example_model()
    instance = order_at("ORD-1", "payment.captured")
    first = page(client, instance)
    url = live_url(first)

    unchanged = client.get(url)
    assert unchanged.status_code == 204
    assert unchanged.content == b""

    send(event("ORD-1", "warehouse.packed", T0 + timedelta(hours=3)))
    changed = client.get(url)
    content = changed.content.decode()
    assert changed.status_code == 200
    assert '<h1 id="status-heading">Packed</h1>' in content
    assert '<p id="announcement" hx-swap-oob="innerHTML">Status changed: Packed.</p>' in content
    assert live_url(changed) != url
    assert client.get(live_url(changed)).status_code == 204


def test_the_live_fragment_refreshes_each_minute_without_announcing(client):
    load_example_model()
    instance = order_at("ORD-1", "payment.captured")
    url = live_url(page(client, instance))
    changed, minute = url.split("since=")[1].split(".", 1)[0], url.rsplit(".", 1)[1]
    stale = url.replace(f".{minute}", f".{int(minute) - 1}")

    response = client.get(stale)

    assert response.status_code == 200
    assert "announcement" not in response.content.decode()
    assert changed in live_url(response)


def test_open_pages_refresh_at_seconds_of_their_own_not_all_at_the_full_minute():
    # Given 120 open pages, and their stamps from the second before a full minute of the clock to
    # the end of that minute
    pages = [ProcessInstance(pk=pk, updated_at=T0) for pk in range(1, 121)]
    full_minute = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    stamps = [[_stamp(p, full_minute + timedelta(seconds=s))[1] for s in range(-1, 60)] for p in pages]

    # Then each page's minute turns once in that minute, and at every second 2 of the 120 turn
    assert all(len(set(minutes)) == 2 for minutes in stamps)
    for second in range(60):
        assert sum(minutes[second] != minutes[second + 1] for minutes in stamps) == 2


def _long_history(instance: ProcessInstance, count: int) -> None:
    TransitionRecord.objects.bulk_create(
        TransitionRecord(instance=instance, from_state="paid", to_state="paid", occurred_at=T0) for _ in range(count)
    )


def test_queries_per_view_do_not_grow_with_history(client, django_assert_num_queries):
    load_example_model()
    short = order_at("SHORT", "payment.captured")
    long = order_at("LONG", "payment.captured")
    _long_history(long, 500)
    page(client, short)  # warms the per-process caches: the definition, the completion statistics

    with django_assert_num_queries(2):
        response_short = page(client, short)
    with django_assert_num_queries(2):
        response_long = page(client, long)
    with django_assert_num_queries(1):
        assert client.get(live_url(response_long)).status_code == 204
    with django_assert_num_queries(2):
        assert client.get(live_url(response_short).split("?")[0]).status_code == 200
    assert response_short.status_code == response_long.status_code == 200


# --- expected completion --------------------------------------------------------------------------


def completed_orders(count: int, *, seed_minutes: list[int]) -> list[float]:
    """``count`` delivered orders; each spends seed_minutes[i] from payment to delivery.

    Returns the seconds from "Payment confirmed" to delivery, as the estimate should read them.
    """
    durations = []
    for i in range(count):
        start = T0 + timedelta(days=i)
        paid = start + timedelta(minutes=10)
        total = seed_minutes[i % len(seed_minutes)] + i  # all different
        send(
            event(f"DONE-{i}", "order.placed", start),
            event(f"DONE-{i}", "payment.captured", paid),
            event(f"DONE-{i}", "warehouse.packed", paid + timedelta(minutes=total // 3)),
            event(f"DONE-{i}", "carrier.picked_up", paid + timedelta(minutes=total // 2)),
            event(f"DONE-{i}", "carrier.delivered", paid + timedelta(minutes=total)),
        )
        durations.append(total * 60.0)
    return durations


def test_the_estimate_is_the_median_and_80_percent_range_of_completed_ones(client, settings):
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 10
    load_example_model()
    durations = completed_orders(23, seed_minutes=[600, 1440, 2880, 300, 4000, 950, 7000])
    # Others that must not count: a cancelled order, and an order still going.
    send(
        event("CANCELLED", "order.placed", T0),
        event("CANCELLED", "payment.captured", T0 + timedelta(minutes=5)),
        event("CANCELLED", "order.cancelled", T0 + timedelta(days=90), reason="x"),
    )
    reached = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=1)
    send(event("MINE", "order.placed", reached - timedelta(hours=1)), event("MINE", "payment.captured", reached))

    response = page(client, ProcessInstance.objects.get(transaction_id="MINE"))

    deciles = statistics.quantiles(durations, n=10, method="inclusive")
    expected = {
        "earliest": reached + timedelta(seconds=deciles[0]),
        "likely": reached + timedelta(seconds=statistics.median(durations)),
        "latest": reached + timedelta(seconds=deciles[8]),
    }
    content = response.content.decode()
    shown = re.findall(r'<p class="estimate-(range|likely)">(.*?)</p>', content, flags=re.S)
    times = [t for _, part in shown for t in re.findall(r'<time datetime="([^"]+)"', part)]
    assert times == [expected[k].isoformat(timespec="seconds") for k in ("earliest", "latest", "likely")]
    assert "Based on how long the last 23 completed ones took from this step" in text(response)


def test_the_estimate_is_hidden_below_the_minimum(client, settings):
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 5
    load_example_model()
    completed_orders(4, seed_minutes=[600, 900])
    send(event("MINE", "order.placed", datetime.now(tz=UTC)))
    instance = ProcessInstance.objects.get(transaction_id="MINE")

    response = page(client, instance)

    assert "estimate-range" not in response.content.decode()
    # In words a customer understands: no internal count, no "completed".
    assert "No estimate yet: an estimate appears once we have seen enough similar requests." in text(response)

    completed_orders(5, seed_minutes=[600, 900])  # 9 now, but the statistics are cached...
    assert "estimate-range" not in page(client, instance).content.decode()
    cache.clear()  # ...until the cache expires
    assert "estimate-range" in page(client, instance).content.decode()


def test_an_estimate_that_has_passed_says_so_instead_of_showing_past_dates(client, settings):
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 3
    load_example_model()
    completed_orders(3, seed_minutes=[60])
    send(event("MINE", "order.placed", T0), event("MINE", "payment.captured", T0 + timedelta(minutes=1)))

    body = text(page(client, ProcessInstance.objects.get(transaction_id="MINE")))

    assert "Later than usual" in body
    assert "Between" not in body


def test_an_estimate_within_a_minute_is_one_time_not_a_range(client, settings):
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 3
    load_example_model()
    # Given three orders that each took exactly 90 minutes from payment to delivery
    for i in range(3):
        paid = T0 + timedelta(days=i, minutes=10)
        send(
            event(f"DONE-{i}", "order.placed", paid - timedelta(minutes=10)),
            event(f"DONE-{i}", "payment.captured", paid),
            event(f"DONE-{i}", "warehouse.packed", paid + timedelta(minutes=30)),
            event(f"DONE-{i}", "carrier.picked_up", paid + timedelta(minutes=60)),
            event(f"DONE-{i}", "carrier.delivered", paid + timedelta(minutes=90)),
        )
    reached = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=1)
    send(event("MINE", "order.placed", reached - timedelta(hours=1)), event("MINE", "payment.captured", reached))

    # When the customer opens the page (in English and in German)
    english = page(client, ProcessInstance.objects.get(transaction_id="MINE"))
    german = client.get(
        path_of(instance_tracking_url(instance=ProcessInstance.objects.get(transaction_id="MINE"))),
        HTTP_ACCEPT_LANGUAGE="de",
    )

    # Then the estimate is one time, not "between 1:26 and 1:26"
    estimate = re.search(r'<section class="card estimate".*?</section>', english.content.decode(), flags=re.S).group(0)
    expected = (reached + timedelta(minutes=90)).isoformat(timespec="seconds")
    assert re.findall(r'<time datetime="([^"]+)"', estimate) == [expected], text(english)
    assert "Between" not in text(english)
    assert "Around" in text(english)
    assert "8 in 10 finished within a minute of this time" in text(english)
    assert "Gegen" in text(german)
    assert "Zwischen" not in text(german)


def test_the_estimate_without_enough_history_reads_in_german_too(client, settings):
    settings.STATUSTRACKER_ETA_MIN_COMPLETED = 5
    load_example_model()
    send(event("MINE", "order.placed", datetime.now(tz=UTC)))
    instance = ProcessInstance.objects.get(transaction_id="MINE")

    response = client.get(path_of(instance_tracking_url(instance=instance)), HTTP_ACCEPT_LANGUAGE="de")

    assert "Noch keine Schätzung: Sie erscheint, sobald wir genügend ähnliche Anfragen gesehen haben." in text(response)


# --- language ---------------------------------------------------------------------------------


def test_the_page_speaks_german_when_the_browser_asks(client):
    load_example_model()
    instance = order_at("ORD-1", "warehouse.packed")

    response = client.get(path_of(instance_tracking_url(instance=instance)), HTTP_ACCEPT_LANGUAGE="de")

    assert '<html lang="de">' in response.content.decode()
    assert "Schritt 3 von 5: Packed" in text(response)
    assert "Zuletzt aktualisiert" in text(response)


# --- admin ------------------------------------------------------------------------------------


def test_the_admin_shows_the_link_and_revokes_it(admin_client):
    load_example_model()
    instance = order_at("ORD-1", "order.placed")
    old_url = instance_tracking_url(instance=instance)

    change = admin_client.get(f"/admin/tracking/processinstance/{instance.pk}/change/")
    # On the host the admin was reached on, as the API's tracking_url.
    assert html.escape(f"http://testserver{path_of(old_url)}") in change.content.decode()

    admin_client.post(
        "/admin/tracking/processinstance/",
        {"action": "renew_customer_links", "_selected_action": [instance.pk]},
    )
    instance.refresh_from_db()
    assert instance_tracking_url(instance=instance) != old_url
    assert admin_client.get(path_of(old_url)).status_code == 404


def test_the_vendored_htmx_is_the_npm_package():
    """static/vendor/htmx.min.js is a copy of the pinned npm package, not an edited file."""
    from tests.conftest import ROOT

    package = json.loads((ROOT / "package.json").read_text())["dependencies"]["htmx.org"]
    installed = ROOT / "node_modules" / "htmx.org"
    assert json.loads((installed / "package.json").read_text())["version"] == package
    assert (ROOT / "static" / "vendor" / "htmx.min.js").read_bytes() == (
        installed / "dist" / "htmx.min.js"
    ).read_bytes()


# --- the rules alone (tracking/progress/customer_page.py, no database) -------------------------------------


def test_percentile_is_linear_interpolation_between_closest_ranks():
    rng = random.Random(5)
    for size in [1, 2, 3, 7, 10, 11, 50, 501]:
        values = sorted(rng.uniform(0, 1e6) for _ in range(size))
        if size > 1:
            deciles = statistics.quantiles(values, n=10, method="inclusive")
            assert percentile(values, 0.1) == pytest.approx(deciles[0], rel=1e-12)
            assert percentile(values, 0.9) == pytest.approx(deciles[8], rel=1e-12)
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values), rel=1e-12)


def test_a_model_without_step_or_success_states_still_has_a_step():
    document = {
        "name": "Ticket",
        "states": [
            {"key": "waiting", "label": "Waiting for you", "kind": "exception", "description": "Answer us."},
            {"key": "closed", "label": "Closed", "kind": "failure"},
        ],
        "milestones": [],
        "display": [],
    }
    page = build_page(
        document=document,
        state="waiting",
        context={},
        history=[HistoryRow("waiting", T0)],
        updated_at=T0,
        state_entered_at=T0,
        stats={},
        minimum_completed=1,
        now=T0,
    )
    assert [(s.label, s.is_current) for s in page.steps] == [("Waiting for you", True)]
    assert page.exception == ("Waiting for you", "Answer us.")
    assert page.estimate is None
