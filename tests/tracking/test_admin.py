"""The admin: publishing drafts with validation, manual transitions, version migration."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from models_registry.models import ModelVersion, StatusModel
from tests.conftest import edit_draft, load_example_model, state_of_draft, transition_of
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import ProcessInstance

pytestmark = pytest.mark.django_db


def _events(*events, transaction_id="ORD-1"):
    items = [
        RawEvent(json.dumps({"model_id": "order-fulfilment", "transaction_id": transaction_id, **e}).encode())
        for e in events
    ]
    events_ingest(items=items, source_kind="file")
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def test_admin_pages_load(admin_client):
    load_example_model()
    _events({"event_id": "e1", "event_type": "order.placed"})
    model = StatusModel.objects.get()
    instance = ProcessInstance.objects.get()
    for url in [
        reverse("admin:models_registry_statusmodel_changelist"),
        reverse("admin:models_registry_statusmodel_change", args=[model.pk]),
        reverse("admin:models_registry_modelversion_change", args=[model.versions.get().pk]),
        reverse("admin:tracking_processinstance_changelist"),
        reverse("admin:tracking_processinstance_change", args=[instance.pk]),
        reverse("admin:tracking_inboxevent_changelist"),
        reverse("admin:tracking_deadletter_changelist"),
    ]:
        assert admin_client.get(url).status_code == 200, url


def test_publishing_an_invalid_draft_is_refused_with_the_field(admin_client):
    load_example_model()
    model = StatusModel.objects.get()
    edit_draft(model.key, lambda d: transition_of(d, "warehouse.packed").update(to="nowhere"))

    response = admin_client.post(
        reverse("admin:models_registry_statusmodel_changelist"),
        {"action": "publish_selected", "_selected_action": [model.pk]},
        follow=True,
    )

    text = " ".join(str(m) for m in response.context["messages"])
    assert "Transition 3 (warehouse.packed): 'nowhere' is not a state of this model." in text
    assert ModelVersion.objects.filter(model=model).count() == 1


def test_publishing_an_edited_draft_creates_a_version_and_pins_instances(admin_client):
    load_example_model()
    _events({"event_id": "e1", "event_type": "order.placed"})
    model = StatusModel.objects.get()
    edit_draft(model.key, lambda d: state_of_draft(d, "paid").update(label="Paid in full"))

    admin_client.post(
        reverse("admin:models_registry_statusmodel_changelist"),
        {"action": "publish_selected", "_selected_action": [model.pk]},
    )

    assert list(model.versions.values_list("number", flat=True)) == [2, 1]
    assert ProcessInstance.objects.get().version.number == 1


def test_manual_move_records_who_and_why_and_retries_parked(admin_client, admin_user):
    load_example_model()
    _events({"event_id": "e1", "event_type": "order.placed"}, {"event_id": "e2", "event_type": "warehouse.packed"})
    instance = ProcessInstance.objects.get()
    assert instance.state == "received"

    response = admin_client.post(
        reverse("admin:tracking_processinstance_move", args=[instance.pk]),
        {"target": "paid", "note": "paid by bank transfer"},
    )

    assert response.status_code == 302
    instance.refresh_from_db()
    # The parked warehouse.packed applies once the instance is paid.
    assert instance.state == "packed"
    manual = instance.history.get(to_state="paid")
    assert (manual.actor, manual.note, manual.event) == (admin_user, "paid by bank transfer", None)


def test_migrate_instances_maps_states_and_records_history():
    load_example_model()
    _events({"event_id": "e1", "event_type": "order.placed"}, {"event_id": "e2", "event_type": "payment.failed"})
    document = dict(ModelVersion.objects.get().document)
    document["states"] = [s for s in document["states"] if s["key"] != "on_hold"] + [
        {"key": "payment_problem", "label": "Payment problem", "kind": "exception"}
    ]
    document["transitions"] = [
        {**t, "from": [("payment_problem" if s == "on_hold" else s) for s in t["from"]]}
        | ({"to": "payment_problem"} if t["to"] == "on_hold" else {})
        for t in document["transitions"]
    ]
    from models_registry.services import model_import

    model_import(document=document)

    with pytest.raises(Exception, match="on_hold"):
        call_command("migrate_instances", "order-fulfilment")
    call_command("migrate_instances", "order-fulfilment", "--map", "on_hold=payment_problem")

    instance = ProcessInstance.objects.get()
    assert (instance.version.number, instance.state) == (2, "payment_problem")
    assert instance.history.last().note == "migrated from version 1 to 2"
    # The new version's transitions now apply to it.
    _events({"event_id": "e3", "event_type": "payment.captured"})
    instance.refresh_from_db()
    assert instance.state == "paid"


def test_bootstrap_local_prints_a_login(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("bootstrap_local")
    out = capsys.readouterr().out
    assert "user: admin  password:" in out
    assert "API token (producer and reader):" in out
    assert StatusModel.objects.filter(key__in=["order-fulfilment", "parcel-delivery"]).count() == 2
