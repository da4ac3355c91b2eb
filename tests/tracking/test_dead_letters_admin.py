"""The dead letters' admin: the list and its filters, raw input shown safely, edit and replay, discard,
bulk actions behind confirmation pages, and a permission for each action."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import load_example_model
from tests.events import order_event
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, InboxEvent

pytestmark = pytest.mark.django_db

LIST = reverse("admin:tracking_deadletter_changelist")


def refused(envelope, ref="orders.jsonl:1") -> DeadLetter:
    payload = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    events_ingest(items=[RawEvent(payload, source_ref=ref)], source_kind="file")
    return DeadLetter.objects.latest("pk")


def page(letter) -> str:
    return reverse("admin:tracking_deadletter_change", args=[letter.pk])


def replay_url(letter) -> str:
    return reverse("admin:tracking_deadletter_replay", args=[letter.pk])


def discard_url(letter) -> str:
    return reverse("admin:tracking_deadletter_discard", args=[letter.pk])


@pytest.fixture
def viewer(django_user_model):
    """Staff who may look at dead letters and do nothing else."""
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_open_letters_by_default_and_filters_by_status_reason_and_source(admin_client, admin_user):
    unknown = refused(order_event("e1", "ORD-1", "order.placed"))
    load_example_model()
    bad_time = refused({**order_event("e2", "ORD-2", "order.placed"), "occurred_at": "yesterday"})
    not_json = refused(b"{oops", ref="orders.jsonl:3")
    DeadLetter.objects.filter(pk=not_json.pk).update(discarded_by=admin_user, discard_reason="noise")
    DeadLetter.objects.filter(pk=not_json.pk).update(discarded_at=not_json.received_at)

    def listed(query="") -> set[int]:
        response = admin_client.get(LIST + query)
        assert response.status_code == 200
        return {letter.pk for letter in response.context["cl"].result_list}

    assert listed() == {unknown.pk, bad_time.pk}
    assert listed("?status=all") == {unknown.pk, bad_time.pk, not_json.pk}
    assert listed("?status=discarded") == {not_json.pk}
    assert listed("?reason=unknown_model") == {unknown.pk}
    assert listed("?reason=format") == {bad_time.pk}
    assert listed("?status=all&reason=not_json") == {not_json.pk}
    assert listed("?source_kind__exact=kinesis") == set()
    year = unknown.received_at.year
    assert listed(f"?received_at__year={year}") == {unknown.pk, bad_time.pk}
    html = admin_client.get(LIST).content.decode()
    assert "Unknown model" in html  # the reason filter's choices, in words


def test_raw_input_is_shown_escaped_as_text_or_as_a_hex_dump(admin_client):
    script = refused(b'<script>alert("x")</script>')
    binary = refused(b"\xff\xfe{\x00}")

    html = admin_client.get(page(script)).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<script>alert("x")' not in html
    assert "shown as text (UTF-8)" in html

    html = admin_client.get(page(binary)).content.decode()
    assert "00000000  ff fe 7b 00 7d" in html
    assert "these bytes are not UTF-8 text" in html


def test_an_edit_with_problems_is_answered_by_field_in_words_and_nothing_is_sent(admin_client):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})

    form = admin_client.get(replay_url(letter)).content.decode()
    assert 'class="dead-letter-body"' in form
    assert "&quot;occurred_at&quot;: &quot;yesterday&quot;" in form

    edit = {**json.loads(bytes(letter.raw)), "transaction_id": "", "data": [1]}
    response = admin_client.post(replay_url(letter), {"body": json.dumps(edit, indent=2), "_replay": "Replay"})

    assert response.status_code == 200
    errors = response.context["form"].errors["body"]
    assert errors == [
        "transaction_id: must be 1 to 200 characters",
        "occurred_at: must be an RFC 3339 time with a UTC offset",
        "data: must be a JSON object",
    ]
    assert "Ingestion would refuse this event; 3 problems" in response.content.decode()
    response = admin_client.post(replay_url(letter), {"body": '{"event_id": "e1",', "_replay": "Replay"})
    assert response.context["form"].errors["body"] == [
        "the event as a whole: not JSON: Expecting property name enclosed in double quotes: line 1 column 19 (char 18)"
    ]
    letter.refresh_from_db()
    assert letter.is_open
    assert not InboxEvent.objects.exists()


def test_check_says_what_ingestion_would_do_and_replay_records_who(admin_client, admin_user):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    fixed = json.dumps({**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"}, indent=2)

    checked = admin_client.post(replay_url(letter), {"body": fixed, "_check": "Check"})
    assert "Ingestion would take this event." in checked.content.decode()
    assert not InboxEvent.objects.exists()

    response = admin_client.post(replay_url(letter), {"body": fixed, "_replay": "Replay"}, follow=True)

    assert response.redirect_chain[-1][0] == page(letter)
    text = " ".join(str(m) for m in response.context["messages"])
    assert f"Dead letter #{letter.pk} replayed: accepted into the inbox as event 'e1'." in text
    letter.refresh_from_db()
    assert (letter.replayed_by, letter.replay_outcome) == (admin_user, "accepted")
    html = response.content.decode()
    assert f"by {admin_user.username} (edited): Accepted into the inbox." in html
    assert "Edit and replay" not in html  # a replayed letter has no actions left


def test_a_replay_accepted_as_a_duplicate_says_so(admin_client):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    events_ingest(items=[RawEvent(order_event("e1", "ORD-1", "order.placed"))], source_kind="api")
    fixed = json.dumps({**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"})

    checked = admin_client.post(replay_url(letter), {"body": fixed, "_check": "Check"}).content.decode()
    assert "The inbox already holds an event with the id <code>e1</code>" in checked
    response = admin_client.post(replay_url(letter), {"body": fixed, "_replay": "Replay"}, follow=True)

    text = " ".join(str(m) for m in response.context["messages"])
    assert "replayed: a duplicate. Event 'e1' was already in the inbox; nothing changed." in text


def test_discard_asks_for_a_reason(admin_client, admin_user):
    letter = refused(order_event("e1", "ORD-1", "order.placed"))

    response = admin_client.post(discard_url(letter), {"reason": ""})
    assert response.context["form"].errors["reason"] == ["This field is required."]
    admin_client.post(discard_url(letter), {"reason": "a test event from billing"})

    letter.refresh_from_db()
    assert (letter.discarded_by, letter.discard_reason) == (admin_user, "a test event from billing")
    assert "Discarded on" in admin_client.get(page(letter)).content.decode()


def test_bulk_replay_of_a_filtered_selection_is_confirmed_first(admin_client):
    letters = [refused(order_event(f"e{i}", f"ORD-{i}", "order.placed"), ref=f"f:{i}") for i in range(3)]
    load_example_model()
    bad = refused({**order_event("e9", "ORD-9", "order.placed"), "data": 5}, ref="f:9")
    post = {"action": "replay_selected", "select_across": "1", "_selected_action": [letters[0].pk]}

    confirm = admin_client.post(LIST + "?reason=unknown_model", post)

    assert confirm.status_code == 200
    assert "Yes, replay 3" in confirm.content.decode()
    assert not InboxEvent.objects.exists()

    response = admin_client.post(LIST + "?reason=unknown_model", {**post, "confirmed": "yes"}, follow=True)

    assert set(InboxEvent.objects.values_list("event_id", flat=True)) == {"e0", "e1", "e2"}
    text = " ".join(str(m) for m in response.context["messages"])
    assert "3 dead letter(s) replayed: 3 accepted" in text
    bad.refresh_from_db()
    assert bad.is_open


def test_bulk_replay_reports_letters_still_invalid(admin_client):
    load_example_model()
    bad = refused({**order_event("e9", "ORD-9", "order.placed"), "data": 5})
    good = refused({**order_event("e8", "ORD-8", "order.placed"), "model_id": "later"})
    DeadLetter.objects.filter(pk=good.pk).update(raw=json.dumps(order_event("e8", "ORD-8", "order.placed")).encode())

    response = admin_client.post(
        LIST,
        {"action": "replay_selected", "_selected_action": [bad.pk, good.pk], "confirmed": "yes"},
        follow=True,
    )

    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 dead letter(s) replayed: 1 accepted" in text
    assert f"Dead letter #{bad.pk} is still invalid and stays open: data: must be a JSON object." in text


def test_bulk_discard_needs_a_reason_on_its_confirmation_page(admin_client):
    letters = [refused(order_event(f"e{i}", f"ORD-{i}", "order.placed")) for i in range(2)]
    post = {"action": "discard_selected", "_selected_action": [letter.pk for letter in letters]}

    confirm = admin_client.post(LIST, post)
    assert "Yes, discard 2" in confirm.content.decode()
    refused_without_reason = admin_client.post(LIST, {**post, "confirmed": "yes", "reason": ""})
    assert refused_without_reason.context["form"].errors["reason"] == ["This field is required."]
    assert DeadLetter.objects.filter(discarded_at__isnull=True).count() == 2

    admin_client.post(LIST, {**post, "confirmed": "yes", "reason": "load test"})

    assert set(DeadLetter.objects.values_list("discard_reason", flat=True)) == {"load test"}


def test_a_viewer_sees_dead_letters_and_cannot_act(viewer):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    fixed = json.dumps({**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"})

    assert viewer.get(LIST).status_code == 200
    html = viewer.get(page(letter)).content.decode()
    assert "Edit and replay" not in html
    assert "Discard" not in html
    assert 'name="action"' not in viewer.get(LIST).content.decode()  # no actions offered
    assert viewer.get(replay_url(letter)).status_code == 403
    assert viewer.post(replay_url(letter), {"body": fixed, "_replay": "Replay"}).status_code == 403
    assert viewer.post(discard_url(letter), {"reason": "x"}).status_code == 403
    for action in ("replay_selected", "discard_selected"):
        viewer.post(LIST, {"action": action, "_selected_action": [letter.pk], "confirmed": "yes", "reason": "x"})

    letter.refresh_from_db()
    assert letter.is_open
    assert not InboxEvent.objects.exists()


def test_an_operator_with_the_replay_permission_only_cannot_discard(django_user_model):
    letter = refused(order_event("e1", "ORD-1", "order.placed"))
    user = django_user_model.objects.create_user("replayer", is_staff=True)
    for codename in ("view_deadletter", "replay_deadletter"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)

    assert client.get(replay_url(letter)).status_code == 200
    assert client.post(discard_url(letter), {"reason": "x"}).status_code == 403


def test_csrf_stays_on(admin_user):
    load_example_model()
    letter = refused({**order_event("e1", "ORD-1", "order.placed"), "occurred_at": "yesterday"})
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    fixed = json.dumps({**json.loads(bytes(letter.raw)), "occurred_at": "2026-11-26T10:00:00Z"})
    assert client.post(replay_url(letter), {"body": fixed, "_replay": "Replay"}).status_code == 403
    assert client.post(discard_url(letter), {"reason": "x"}).status_code == 403
    post = {"action": "discard_selected", "_selected_action": [letter.pk], "confirmed": "yes", "reason": "x"}
    assert client.post(LIST, post).status_code == 403
    letter.refresh_from_db()
    assert letter.is_open
