"""An instance's story for operators: every event of its transaction with its outcome, the
transitions they caused, manual moves with who and why; and finding instances by context values."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from models_registry.services import model_import
from tests.events import ingest, order_event
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, ProcessInstance
from tracking.operations.moves import instance_move_manually
from tracking.progress.story import StoryEvent, StoryTransition, instance_story

pytestmark = pytest.mark.django_db


def apply_all() -> None:
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def order_a() -> ProcessInstance:
    """Order A: placed (sent twice), delivered too early (parked), paid, paid again (ignored)."""
    ingest(order_event("a1", "A", "order.placed"), order_event("a2", "A", "carrier.delivered"))
    again = events_ingest(
        items=[RawEvent(json.dumps(order_event("a1", "A", "order.placed")).encode())], source_kind="file"
    )
    assert [result.status for result in again] == ["duplicate"]  # the same event delivered twice
    apply_all()
    ingest(order_event("a3", "A", "payment.captured"))
    apply_all()
    ingest(order_event("a4", "A", "payment.captured"))
    apply_all()
    return ProcessInstance.objects.get(transaction_id="A")


def test_the_story_has_every_event_with_its_outcome_and_the_moves_it_caused(example_model, admin_user):
    instance = order_a()
    instance_move_manually(instance_id=instance.pk, target="on_hold", actor=admin_user, note="customer called")

    story = instance_story(instance=instance)

    events = [e for e in story.entries if isinstance(e, StoryEvent)]
    assert [(e.event_id, e.status) for e in events] == [
        ("a1", EventStatus.APPLIED), ("a2", EventStatus.PARKED),
        ("a3", EventStatus.APPLIED), ("a4", EventStatus.IGNORED),
    ]  # fmt: skip
    assert events[0].duplicates == 1
    assert story.duplicates == 1
    assert [(m.from_state, m.to_state) for m in events[0].transitions] == [("", "received")]
    assert [(m.from_label, m.to_label) for m in events[2].transitions] == [("Order received", "Payment confirmed")]
    assert events[1].expires_at == events[1].received_at + timedelta(days=7)  # the example's park_ttl
    assert events[1].outcome.startswith("parked")
    assert events[3].reason
    manual = story.entries[-1]
    assert isinstance(manual, StoryTransition)
    assert (manual.actor, manual.note, manual.to_state) == (admin_user.username, "customer called", "on_hold")
    assert story.counts == {"applied": 2, "parked": 1, "ignored": 1}
    assert story.path == [("", "received"), ("received", "paid"), ("paid", "on_hold")]


def test_the_context_as_it_changed_is_on_the_move_that_changed_it(example_model):
    ingest(
        order_event("b1", "B", "order.placed"),
        order_event("b2", "B", "payment.captured"),
        order_event("b3", "B", "warehouse.packed"),
        order_event("b4", "B", "carrier.picked_up", carrier="DHL", tracking_number="JD01"),
    )
    apply_all()

    story = instance_story(instance=ProcessInstance.objects.get(transaction_id="B"))

    shipped = story.entries[-1]
    assert shipped.transitions[0].context_updates == {"carrier": "DHL", "tracking_number": "JD01"}


def test_the_instance_page_tells_the_story_and_draws_the_way_it_came(example_model, admin_client):
    instance = order_a()

    page = admin_client.get(reverse("admin:tracking_processinstance_change", args=[instance.pk]))

    content = page.content.decode()
    assert page.status_code == 200
    for text in ("carrier.delivered", "Parked: waits until the instance can take it", "Ignored", "expires",
                 "1 duplicate dropped", "Copy customer link", "Renew link"):  # fmt: skip
        assert text in content, text
    diagram = page.context["diagram"]
    assert [s.key for s in diagram.states if s.current] == ["paid"]
    assert {s.key for s in diagram.states if s.visited} == {"received", "paid"}
    assert [(e.source, e.target) for e in diagram.edges if e.taken] == [("received", "paid")]


def test_renewing_the_link_from_the_page_needs_a_post_and_the_permission(example_model, admin_client, client):
    instance = order_a()
    url = reverse("admin:tracking_processinstance_renew_link", args=[instance.pk])
    nonce = instance.link_nonce

    assert admin_client.get(url).status_code == 403
    admin_client.post(url)

    instance.refresh_from_db()
    assert instance.link_nonce != nonce


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("C", ["C"]),  # the transaction id
        ("JD77", ["C"]),  # a value of any field the model shows or sets
        ("carrier=UPS", ["D"]),  # one field
        ("carrier=DHL", ["C"]),
        ("nobody", []),
    ],
)
def test_instances_are_found_by_transaction_id_or_context_value(example_model, admin_client, term, found):
    for transaction, carrier, number in (("C", "DHL", "JD77"), ("D", "UPS", "1Z99")):
        ingest(
            order_event(f"{transaction}1", transaction, "order.placed"),
            order_event(f"{transaction}2", transaction, "payment.captured"),
            order_event(f"{transaction}3", transaction, "warehouse.packed"),
            order_event(f"{transaction}4", transaction, "carrier.picked_up", carrier=carrier, tracking_number=number),
        )
    apply_all()

    page = admin_client.get(reverse("admin:tracking_processinstance_changelist"), {"q": term})

    assert sorted(i.transaction_id for i in page.context["cl"].result_list) == found


def test_the_delayed_filter_finds_instances_past_expected_within(example_model, admin_client):
    document = copy.deepcopy(example_model.document)
    document["states"][0]["expected_within"] = "P1D"  # received: orders are paid within a day
    model_import(document=document)
    ingest(order_event("e1", "E", "order.placed"), order_event("f1", "F", "order.placed"))
    apply_all()
    ProcessInstance.objects.filter(transaction_id="E").update(state_entered_at=timezone.now() - timedelta(days=2))

    changelist = reverse("admin:tracking_processinstance_changelist")
    delayed = admin_client.get(changelist, {"delayed": "yes"}).context["cl"].result_list
    on_time = admin_client.get(changelist, {"delayed": "no"}).context["cl"].result_list

    assert [i.transaction_id for i in delayed] == ["E"]
    assert [i.transaction_id for i in on_time] == ["F"]


def test_a_viewer_cannot_renew_a_link_and_csrf_is_checked(example_model, django_user_model):
    from django.contrib.auth.models import Group
    from django.test import Client

    instance = order_a()
    viewer = django_user_model.objects.create_user("viewer", password="unused", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewers"))
    operator = django_user_model.objects.create_user("operator", password="unused", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    url = reverse("admin:tracking_processinstance_renew_link", args=[instance.pk])
    nonce = instance.link_nonce

    as_viewer = Client()
    as_viewer.force_login(viewer)
    page = as_viewer.get(reverse("admin:tracking_processinstance_change", args=[instance.pk]))
    assert page.status_code == 200
    assert 'value="Renew link"' not in page.content.decode()  # no button for a viewer
    assert as_viewer.post(url).status_code == 403
    as_operator = Client(enforce_csrf_checks=True)
    as_operator.force_login(operator)
    assert as_operator.post(url).status_code == 403  # no CSRF token
    instance.refresh_from_db()
    assert instance.link_nonce == nonce


def test_operators_may_manage_webhooks_and_viewers_may_look(db):
    from django.contrib.auth.models import Group

    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    viewers = set(Group.objects.get(name="Viewers").permissions.values_list("codename", flat=True))

    assert {"manage_webhooks", "change_webhooksubscription", "view_notification"} <= operators
    assert "view_webhooksubscription" in viewers
    assert not {"manage_webhooks", "change_webhooksubscription"} & viewers
