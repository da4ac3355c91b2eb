"""Repairs in the admin: the migration page with its dry run, the instance list's bulk actions and the
inbox's parked-event actions behind their confirmation pages; and who may use them: the three groups,
a viewer who can act on nothing (not even by a forged post), CSRF kept on."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from tests.tracking.test_fsm import event_status, instance
from tests.tracking.test_fsm import version_two as v2_of_example  # noqa: F401 (fixture)
from tests.tracking.test_repairs import orders  # noqa: F401 (fixture)
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = pytest.mark.django_db

MIGRATE = reverse("admin:tracking_processinstance_migrate")
INSTANCES = reverse("admin:tracking_processinstance_changelist")
INBOX = reverse("admin:tracking_inboxevent_changelist")
INSTANCE_ACTIONS = ["move_to_state", "migrate_to_version", "retry_parked_events"]
INBOX_ACTIONS = ["retry_failed", "skip_failed", "retry_parked", "expire_parked"]


def member_of(group: str, username: str):
    user = get_user_model().objects.create_user(username, password="unused-password", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator():
    return member_of("Operators", "olga")


@pytest.fixture
def viewer():
    return member_of("Viewers", "vic")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def version_two(orders, v2_of_example):  # noqa: F811
    """The orders of test_repairs, then version 2: "on_hold" renamed "payment_problem"."""
    return v2_of_example


def offered_actions(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context.get("action_form")
    return [name for name, _ in form.fields["action"].choices if name] if form else []


def action_post(client: Client, url: str, action: str, objects, **fields):
    data = {"action": action, "_selected_action": [o.pk for o in objects], **fields}
    return client.post(url, data)


def assert_refused(response) -> None:
    """The action did not run: the list again (its action unknown to it), or a redirect back to it."""
    assert response.status_code in (200, 302, 403)
    if response.status_code == 200:
        assert response.templates[0].name.endswith("change_list.html")


# --- the groups -----------------------------------------------------------------------------------------


def test_the_three_groups_have_the_permissions_of_their_work():
    def perms(name):
        return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=name).permissions.all()}

    editors, operators, viewers = perms("Definition editors"), perms("Operators"), perms("Viewers")

    assert {"models_registry.add_statusmodel", "models_registry.change_statusmodel",
            "models_registry.view_modelversion", "models_registry.edit_definitions"} <= editors  # fmt: skip
    assert not any(p.startswith("tracking.") for p in editors)
    assert {"tracking.change_processinstance", "tracking.change_inboxevent", "tracking.view_processinstance",
            "tracking.replay_deadletter", "models_registry.view_modelversion"} <= operators  # fmt: skip
    assert not any(p.split(".")[1].startswith(("add_", "delete_")) for p in operators)
    assert not any(p.startswith("models_registry.change_") for p in operators)
    assert viewers == {p for p in operators | editors if p.split(".")[1].startswith("view_")}


# --- the migration page ------------------------------------------------------------------------------------


def test_the_page_prefills_the_mapping_where_keys_match_and_asks_for_the_rest(version_two, operator):
    client = logged_in(operator)

    chooser = client.get(MIGRATE)
    page = client.get(MIGRATE, {"model": version_two.model_id})

    assert chooser.status_code == 200
    # One model: it is chosen; from the version with instances in flight to the latest
    assert (page.context["from_number"], page.context["to_number"]) == (1, 2)
    form = page.context["form"]
    assert {key: form[form.field_name(key)].value() for key in ("received", "on_hold", "paid")} == {
        "received": "received",
        "on_hold": "",
        "paid": "paid",
    }
    assert [(s.key, s.count, lacking) for s, _, lacking in form.rows()] == [
        ("on_hold", 1, True),
        ("paid", 1, False),
        ("received", 1, False),
    ]
    assert page.context["plan"] is None


def migration_data(**fields):
    return {"mapping_for": "2", "map-received": "received", "map-paid": "paid", **fields}


def test_a_dry_run_then_the_migration_all_or_nothing(version_two, operator):
    client = logged_in(operator)
    url = f"{MIGRATE}?model={version_two.model_id}&from=1&to=2"

    # An unmapped state: no dry run, the row says why
    refused = client.post(url, migration_data(_dry_run="1"))
    assert refused.context["plan"] is None
    assert "The target version has no such state: choose one." in refused.content.decode()

    dry_run = client.post(
        url, migration_data(**{"map-on_hold": "payment_problem", "map-received": "paid"}, _dry_run="1")
    )
    assert dry_run.context["landing"] == [("Payment confirmed", 2), ("Payment problem", 1)]
    assert "Migrate 3 instances" in dry_run.content.decode()
    assert ProcessInstance.objects.filter(version=version_two).count() == 0

    fingerprint = dry_run.context["fingerprint"]
    applied = migration_data(**{"map-on_hold": "payment_problem", "map-received": "paid"}, _apply="1")
    # Applying a mapping other than the one dry-run shows the new dry run instead
    changed = client.post(url, {**applied, "map-received": "received", "dry_run_of": fingerprint, "expected": "3"})
    assert "The mapping changed since the dry run" in changed.content.decode()
    # so does a different number of instances, and a missing note
    stale = client.post(url, {**applied, "dry_run_of": fingerprint, "expected": "2", "note": "x"})
    assert "The instances changed since the dry run (2 then, 3 now)" in stale.content.decode()
    no_note = client.post(url, {**applied, "dry_run_of": fingerprint, "expected": "3"})
    assert "Say why" in no_note.content.decode()
    assert ProcessInstance.objects.filter(version=version_two).count() == 0

    done = client.post(url, {**applied, "dry_run_of": fingerprint, "expected": "3", "note": "on_hold renamed"})

    assert done.status_code == 302
    assert [(instance(t).version.number, instance(t).state) for t in "ABCD"] == [
        (2, "packed"),  # received -> paid, and its parked packing then applied
        (2, "payment_problem"),
        (2, "paid"),
        (1, "delivered"),
    ]
    record = instance("B").history.last()
    assert (record.actor, record.note) == (operator, "migrated from version 1 to 2: on_hold renamed")


def test_the_instance_list_links_the_page_for_operators_only(orders, operator, viewer):  # noqa: F811
    assert MIGRATE in logged_in(operator).get(INSTANCES).content.decode()
    assert MIGRATE not in logged_in(viewer).get(INSTANCES).content.decode()


# --- bulk actions on the instance list ---------------------------------------------------------------


def test_moving_the_selected_instances_asks_first_then_moves_them(orders, operator):  # noqa: F811
    client = logged_in(operator)
    chosen = [instance("B"), instance("C")]

    confirmation = action_post(client, INSTANCES, "move_to_state", chosen, index="0")

    assert confirmation.status_code == 200
    text = confirmation.content.decode()
    assert "Move instances to a state" in text
    assert "order-fulfilment · B" in text
    assert confirmation.context["plan_rows"] == [("On hold", 1), ("Payment confirmed", 1)]
    assert instance("B").state == "on_hold"

    done = action_post(client, INSTANCES, "move_to_state", chosen, _confirmed="1", target="packed", note="recount")

    assert done.status_code == 302
    assert (instance("B").state, instance("C").state, instance("A").state) == ("packed", "packed", "received")
    assert instance("C").history.last().note == "recount"


def test_migrating_the_selected_instances_shows_a_dry_run_first(version_two, operator):
    client = logged_in(operator)
    chosen = [instance("A"), instance("B"), instance("D")]

    first = action_post(client, INSTANCES, "migrate_to_version", chosen, index="0")
    assert first.status_code == 200
    assert first.context["target"] == version_two
    mapping = {"mapping_for": "2", "to": "2", "map-received": "received", "map-on_hold": "payment_problem"}
    dry_run = action_post(client, INSTANCES, "migrate_to_version", chosen, _confirmed="1", _dry_run="1", **mapping)
    assert dry_run.context["plan"].total == 2  # D is delivered: not in flight

    done = action_post(
        client, INSTANCES, "migrate_to_version", chosen, _confirmed="1", _apply="1", note="rename",
        dry_run_of=dry_run.context["fingerprint"], expected="2", **mapping,
    )  # fmt: skip

    assert done.status_code == 302
    assert [(instance(t).version.number, instance(t).state) for t in "ABCD"] == [
        (2, "received"), (2, "payment_problem"), (1, "paid"), (1, "delivered"),
    ]  # fmt: skip


def test_retrying_the_parked_events_of_the_selected_instances(orders, operator):  # noqa: F811
    client = logged_in(operator)

    confirmation = action_post(client, INSTANCES, "retry_parked_events", [instance("A"), instance("B")], index="0")
    assert confirmation.context["plan_rows"] == [("warehouse.packed", 1)]
    done = action_post(client, INSTANCES, "retry_parked_events", [instance("A"), instance("B")], _confirmed="1")

    assert done.status_code == 302
    assert event_status("a2") == EventStatus.PENDING


def test_a_selection_across_pages_is_confirmed_as_the_filters_chose_it(orders, operator):  # noqa: F811
    client = logged_in(operator)
    url = f"{INSTANCES}?status__exact=active"  # A and C

    confirmation = client.post(url, {"action": "move_to_state", "select_across": "1", "index": "0",
                                     "_selected_action": [instance("A").pk]})  # fmt: skip
    assert confirmation.context["count"] == 2
    hidden = dict(confirmation.context["hidden"])
    client.post(url, {**hidden, "target": "on_hold", "note": "all active on hold"})

    assert [instance(t).state for t in "ABCD"] == ["on_hold", "on_hold", "on_hold", "delivered"]


# --- parked events in the inbox --------------------------------------------------------------------------


def test_a_list_filtered_by_status_offers_the_repairs_of_that_status(orders, operator):  # noqa: F811
    client = logged_in(operator)

    assert set(offered_actions(client, INBOX)) >= set(INBOX_ACTIONS)
    assert offered_actions(client, f"{INBOX}?status__exact=parked") == ["retry_parked", "expire_parked"]
    assert offered_actions(client, f"{INBOX}?status__exact=failed") == ["retry_failed", "skip_failed"]
    assert offered_actions(client, f"{INBOX}?status__exact=applied") == []


def test_expiring_parked_events_asks_for_a_note_then_records_it(orders, operator):  # noqa: F811
    client = logged_in(operator)
    url = f"{INBOX}?status__exact=parked"
    a2 = InboxEvent.objects.get(event_id="a2")

    confirmation = action_post(client, url, "expire_parked", [a2], index="0")
    assert "1 of the 1 events chosen are parked" in confirmation.content.decode()
    without_note = action_post(client, url, "expire_parked", [a2], _confirmed="1")
    assert without_note.status_code == 200
    assert event_status("a2") == EventStatus.PARKED
    action_post(client, url, "expire_parked", [a2], _confirmed="1", note="withdrawn")

    a2.refresh_from_db()
    assert (a2.status, a2.reason) == (EventStatus.EXPIRED, "expired by olga: withdrawn")


def test_retrying_parked_events_from_the_inbox(orders, operator):  # noqa: F811
    client = logged_in(operator)
    a2 = InboxEvent.objects.get(event_id="a2")

    action_post(client, INBOX, "retry_parked", [a2], index="0")
    assert event_status("a2") == EventStatus.PARKED
    action_post(client, INBOX, "retry_parked", [a2], _confirmed="1")

    assert event_status("a2") == EventStatus.PENDING


# --- a viewer can act on nothing ----------------------------------------------------------------------------


def test_a_viewer_sees_the_lists_without_a_single_repair(version_two, viewer):
    client = logged_in(viewer)

    assert offered_actions(client, INSTANCES) == []
    assert offered_actions(client, INBOX) == []
    assert client.get(MIGRATE).status_code == 403
    assert client.post(f"{MIGRATE}?model={version_two.model_id}&from=1&to=2", {}).status_code == 403


@pytest.mark.parametrize("action", INSTANCE_ACTIONS)
def test_a_viewers_forged_instance_action_changes_nothing(version_two, viewer, action):
    client = logged_in(viewer)
    before = list(ProcessInstance.objects.order_by("pk").values_list("state", "version_id"))
    forged = {"target": "paid", "note": "x", "to": "2", "mapping_for": "2", "map-on_hold": "payment_problem",
              "map-received": "received", "map-paid": "paid", "_apply": "1", "expected": "3"}  # fmt: skip

    for step in ({"index": "0"}, {"_confirmed": "1", **forged}):
        response = action_post(client, INSTANCES, action, ProcessInstance.objects.all(), **step)
        assert_refused(response)

    assert list(ProcessInstance.objects.order_by("pk").values_list("state", "version_id")) == before
    assert event_status("a2") == EventStatus.PARKED


@pytest.mark.parametrize("action", INBOX_ACTIONS)
def test_a_viewers_forged_inbox_action_changes_nothing(orders, viewer, action):  # noqa: F811
    InboxEvent.objects.filter(event_id="b2").update(status=EventStatus.FAILED)
    client = logged_in(viewer)
    before = list(InboxEvent.objects.order_by("pk").values_list("status", flat=True))

    for step in ({"index": "0"}, {"_confirmed": "1", "note": "x"}):
        response = action_post(client, INBOX, action, InboxEvent.objects.all(), **step)
        assert_refused(response)

    assert list(InboxEvent.objects.order_by("pk").values_list("status", flat=True)) == before


def test_an_operator_without_the_change_permission_cannot_migrate(version_two):
    # Staff with every view permission but no change one: Viewers' rights under another name
    user = member_of("Viewers", "staff-only")
    assert logged_in(user).get(MIGRATE).status_code == 403


# --- CSRF stays on -------------------------------------------------------------------------------------------


def test_repairs_need_the_csrf_token(version_two, operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    url = f"{MIGRATE}?model={version_two.model_id}&from=1&to=2"

    no_token = client.post(url, migration_data(**{"map-on_hold": "payment_problem"}, _dry_run="1"))
    no_token_action = action_post(client, INSTANCES, "move_to_state", [instance("B")], _confirmed="1",
                                  target="paid", note="x")  # fmt: skip

    assert (no_token.status_code, no_token_action.status_code) == (403, 403)
    assert instance("B").state == "on_hold"
    page = client.get(url)
    token = page.context["csrf_token"]
    with_token = client.post(
        url, migration_data(**{"map-on_hold": "payment_problem"}, _dry_run="1", csrfmiddlewaretoken=str(token))
    )
    assert with_token.status_code == 200
    assert with_token.context["plan"].total == 3
    moved = action_post(client, INSTANCES, "move_to_state", [instance("B")], _confirmed="1", target="paid",
                        note="x", csrfmiddlewaretoken=str(token))  # fmt: skip
    assert moved.status_code == 302
    assert instance("B").state == "paid"
