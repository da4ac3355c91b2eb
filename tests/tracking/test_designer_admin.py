"""The designer's pages in the admin (models_registry.admin.StatusModelAdmin, with try-it from
tracking.admin.definitions): save, publish and discard a draft, the live check, and try-it, whose
answers must be the REST endpoint's (POST /api/v1/models/{id}/try) on the same inputs."""

from __future__ import annotations

import copy
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

import tests.failing_handlers  # noqa: F401 - registers jumps_ahead, a handler whose move is refused
from models_registry.admin import new_model_skeleton
from models_registry.definition import canonical_order
from models_registry.models import ModelVersion, StatusModel
from models_registry.services import draft_save, model_import
from tests.models_registry.test_diff import LOAN
from tests.tracking.test_api_try import CASES, models  # noqa: F401 - the API test's models, a fixture

pytestmark = pytest.mark.django_db

ORDERS = "order-fulfilment"
# What both try-its answer alike (the endpoint adds model_id, version and the event as read)
ANSWER_KEYS = ("outcome", "reason", "from_state", "to_state", "steps", "context_updates", "context", "waits_for")


def change_url(status_model: StatusModel) -> str:
    return reverse("admin:models_registry_statusmodel_change", args=[status_model.pk])


def add_url() -> str:
    return reverse("admin:models_registry_statusmodel_add")


def texts(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def post_designer(client, url: str, document, *, button: str = "_save", queue: str = "", follow: bool = True):
    body = document if isinstance(document, str) else json.dumps(document)
    return client.post(url, {"document": body, "queue": queue, button: "1"}, follow=follow)


@pytest.fixture
def orders(example_model) -> StatusModel:
    return example_model.model


def draft_of(key: str) -> dict:
    return StatusModel.objects.get(key=key).draft


def orders_draft(change=None) -> dict:
    draft = canonical_order(ModelVersion.objects.get(model__key=ORDERS, number=1).document)
    if change:
        change(draft)
    return draft


# The pages


def test_the_add_page_starts_from_the_skeleton(admin_client):
    response = admin_client.get(add_url())

    assert response.status_code == 200
    designer = response.context["designer"]
    assert (designer["document"], designer["is_new"], designer["editable"]) == (new_model_skeleton(), True, True)
    assert designer["report"]["problems"][0]["path"] == "id"
    assert designer["urls"]["try"] is None


def test_the_change_page_shows_the_draft_its_versions_and_try_it(admin_client, orders):
    response = admin_client.get(change_url(orders))

    assert response.status_code == 200
    designer = response.context["designer"]
    assert designer["document"] == draft_of(ORDERS)
    assert (designer["latest_version"], designer["report"]["problems"], designer["report"]["changes"]) == (1, [], [])
    assert designer["urls"]["try"] == reverse("admin:models_registry_statusmodel_try", args=[orders.pk])
    assert [entry["version"].number for entry in response.context["versions"]] == [1]
    assert b'name="_publish"' in response.content
    assert b'name="_discard"' in response.content


def test_a_missing_model_sends_back_to_the_list(admin_client):
    response = admin_client.get(reverse("admin:models_registry_statusmodel_change", args=[999]))

    assert response.status_code == 302


# Save


def test_adding_a_model_saves_its_draft_and_queue(admin_client):
    response = post_designer(admin_client, add_url(), LOAN, queue=" loans ")

    status_model = StatusModel.objects.get(key="loan")
    assert response.redirect_chain == [(change_url(status_model), 302)]
    assert (status_model.draft, status_model.queue) == (LOAN, "loans")
    assert texts(response) == ["Draft saved. It is ready to publish."]
    assert not status_model.versions.exists()


def test_a_draft_with_problems_is_saved_as_it_is_and_the_message_counts_them(admin_client, orders):
    document = orders_draft(lambda d: [d["transitions"][2].update(to="pakced"), d.update(name="")])

    response = post_designer(admin_client, change_url(orders), document)

    assert draft_of(ORDERS) == document
    assert texts(response) == [
        "Draft saved. It has 2 problems to fix before it can be published; each is shown where it is."
    ]
    assert response.context["designer"]["report"]["problems"][0]["text"] == "Name: This field is required."
    assert orders.versions.count() == 1


def test_the_message_counts_the_problems_the_page_shows(admin_client, orders):
    document = orders_draft(lambda d: d.update(milestones=[{"key": "m", "label": "M", "states": "received"}]))

    response = post_designer(admin_client, change_url(orders), document)

    shown = len(response.context["designer"]["report"]["problems"])
    assert shown == 2
    assert texts(response) == [
        f"Draft saved. It has {shown} problems to fix before it can be published; each is shown where it is."
    ]


def test_the_id_of_an_existing_model_cannot_change(admin_client, orders):
    post_designer(admin_client, change_url(orders), orders_draft(lambda d: d.update(id="renamed")))

    assert draft_of(ORDERS)["id"] == ORDERS
    assert not StatusModel.objects.filter(key="renamed").exists()


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        (
            "Loan!",
            "Not saved. Model id: Use up to 64 lowercase letters, digits, dots, dashes or underscores, starting with "
            "a letter or digit.",
        ),
        (
            "",
            "Not saved. Model id: Use up to 64 lowercase letters, digits, dots, dashes or underscores, starting "
            "with a letter or digit.",
        ),
        (ORDERS, "Not saved. Model id: A model with the id 'order-fulfilment' exists already."),
    ],
)
def test_a_new_model_with_an_invalid_or_taken_id_is_not_saved_and_comes_back_as_sent(
    admin_client, orders, model_id, message
):
    document = {**copy.deepcopy(LOAN), "id": model_id, "name": "Typed by hand"}

    response = post_designer(admin_client, add_url(), document, queue="loans")

    assert response.status_code == 200
    assert response.redirect_chain == []
    assert texts(response) == [message]
    assert (response.context["designer"]["document"], response.context["designer"]["queue"]) == (document, "loans")
    assert list(StatusModel.objects.values_list("key", flat=True)) == [ORDERS]
    assert draft_of(ORDERS) == orders_draft()


@pytest.mark.parametrize("body", ["{", "[1, 2]", '"a model"', "", "null"])
def test_a_malformed_document_saves_nothing(admin_client, orders, body):
    for url, button in [(change_url(orders), "_save"), (change_url(orders), "_publish"), (add_url(), "_save")]:
        response = post_designer(admin_client, url, body, button=button)

        assert texts(response) == ["The form could not be read; nothing was saved. Reload the page."]
        assert response.redirect_chain == [(url, 302)]
    assert draft_of(ORDERS) == orders_draft()
    assert list(StatusModel.objects.values_list("key", flat=True)) == [ORDERS]
    assert orders.versions.count() == 1


# Publish


def test_a_draft_with_problems_stays_a_draft(admin_client, orders):
    document = orders_draft(lambda d: d["transitions"][2].update(to="pakced"))

    response = post_designer(admin_client, change_url(orders), document, button="_publish")

    assert texts(response) == [
        "order-fulfilment was not published; fix these problems of the draft:",
        "Transition 3 (warehouse.packed): 'pakced' is not a state of this model.",
    ]
    assert draft_of(ORDERS) == document
    assert orders.versions.count() == 1


def test_a_valid_draft_is_published_as_the_next_version(admin_client, admin_user, orders):
    document = orders_draft(lambda d: d["states"][1].update(label="Paid in full"))

    response = post_designer(admin_client, change_url(orders), document, button="_publish", queue="orders")

    assert texts(response) == ["Published order-fulfilment version 2."]
    version = orders.versions.get(number=2)
    assert (canonical_order(version.document), version.published_by) == (document, admin_user)
    orders.refresh_from_db()
    assert orders.queue == "orders"
    assert response.context["designer"]["latest_version"] == 2
    assert response.context["designer"]["report"]["changes"] == []


def test_a_new_model_is_published_as_version_1(admin_client):
    response = post_designer(admin_client, add_url(), LOAN, button="_publish")

    assert texts(response) == ["Published loan version 1."]
    assert ModelVersion.objects.get(model__key="loan").number == 1


def test_an_unchanged_draft_has_nothing_to_publish(admin_client, orders):
    response = post_designer(admin_client, change_url(orders), orders_draft(), button="_publish")

    assert texts(response) == ["order-fulfilment: the draft equals version 1; nothing to publish."]
    assert orders.versions.count() == 1


# Discard


def test_discarding_goes_back_to_the_latest_version(admin_client, orders):
    post_designer(admin_client, change_url(orders), orders_draft(lambda d: d["states"][1].update(label="Paid!")))
    model_import(document=orders_draft(lambda d: d["states"][0].update(label="Got it")))

    response = post_designer(
        admin_client, change_url(orders), orders_draft(lambda d: d.update(name="")), button="_discard"
    )

    assert texts(response) == ["The draft was discarded: it is version 2 again."]
    assert draft_of(ORDERS) == canonical_order(orders.versions.get(number=2).document)
    assert response.context["designer"]["report"]["changes"] == []


def test_a_just_published_draft_shows_no_changes(admin_client):
    document = copy.deepcopy(LOAN)
    document["transitions"][0]["set"] = {"b_long": "data.b", "zz": "data.z"}
    post_designer(admin_client, add_url(), document, button="_publish")

    response = admin_client.get(change_url(StatusModel.objects.get(key="loan")))

    assert response.context["designer"]["report"]["changes"] == []


def test_discarding_without_a_version_is_refused_and_keeps_the_draft(admin_client):
    status_model = draft_save(document=copy.deepcopy(LOAN))

    response = post_designer(admin_client, change_url(status_model), {**LOAN, "name": "Other"}, button="_discard")

    assert texts(response) == ["There is no published version to go back to; the draft is unchanged."]
    assert draft_of("loan") == LOAN


# Who may


@pytest.fixture
def viewer_client(client, django_user_model):
    user = django_user_model.objects.create_user(username="viewer", password=None, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_statusmodel"))
    client.force_login(user)
    return client


def test_a_user_who_may_only_view_gets_no_save(viewer_client, orders):
    page = viewer_client.get(change_url(orders))
    assert page.status_code == 200
    assert page.context["designer"]["editable"] is False
    assert b'name="_publish"' not in page.content

    for button in ["_save", "_publish", "_discard"]:
        response = post_designer(viewer_client, change_url(orders), {**orders_draft(), "name": "x"}, button=button)
        assert response.status_code == 403, button
    assert viewer_client.get(add_url()).status_code == 403
    assert post_designer(viewer_client, add_url(), LOAN).status_code == 403
    assert draft_of(ORDERS) == orders_draft()
    assert orders.versions.count() == 1
    assert not StatusModel.objects.filter(key="loan").exists()


def test_a_user_who_may_only_view_may_check_and_try(viewer_client, orders):
    check = viewer_client.post(check_url(orders), {"document": json.dumps(orders_draft())})
    tried = viewer_client.post(try_url(orders), {"version": "1", "event": '{"event_type": "order.placed"}'})

    assert (check.status_code, tried.status_code) == (200, 200)
    assert tried.json()["outcome"] == "created"
    assert viewer_client.post(reverse("admin:models_registry_statusmodel_check"), {"document": "{}"}).status_code == 403


# The live check


def check_url(status_model: StatusModel) -> str:
    return reverse("admin:models_registry_statusmodel_check_draft", args=[status_model.pk])


def test_check_answers_problems_diagram_changes_and_samples(admin_client, orders):
    document = orders_draft(lambda d: [d["transitions"][2].update(to="pakced"), d.update(id="elsewhere")])

    response = admin_client.post(check_url(orders), {"document": json.dumps(document)})

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"problems", "diagram_html", "changes", "samples"}
    # The model's id is its own, whatever the form says
    assert answer["problems"] == [
        {
            "path": "transitions[2].to",
            "row": "transitions[2]",
            "text": "Transition 3 (warehouse.packed): 'pakced' is not a state of this model.",
        }
    ]
    assert answer["changes"] == [
        "transition 'warehouse.packed' to 'packed' removed",
        "transition 'warehouse.packed' to 'pakced' added",
    ]
    assert "data-model-diagram" in answer["diagram_html"]
    assert {"event_type": "carrier.picked_up", "data": {"carrier": "example", "tracking_number": "example"}} in answer[
        "samples"
    ]
    assert draft_of(ORDERS) == orders_draft()


def test_check_of_a_new_model(admin_client):
    response = admin_client.post(reverse("admin:models_registry_statusmodel_check"), {"document": json.dumps(LOAN)})

    answer = response.json()
    assert answer["problems"] == []
    assert "state 'approved' added" in answer["changes"]
    assert not StatusModel.objects.exists()


def test_check_refuses_what_is_not_a_document(admin_client, orders):
    bad = admin_client.post(check_url(orders), {"document": "{"})
    get = admin_client.get(check_url(orders))

    assert (bad.status_code, bad.json()) == (
        400,
        {"detail": "The form could not be read; nothing was saved. Reload the page."},
    )
    assert get.status_code == 405


# Try it


def try_url(status_model: StatusModel) -> str:
    return reverse("admin:models_registry_statusmodel_try", args=[status_model.pk])


def try_in_admin(client, model_id: str, *, source: dict, state, context: dict, event: dict, status: int = 200):
    form = {
        **source,
        "state": state or "",
        "context": json.dumps(context) if context else "",
        "event": json.dumps(event),
    }
    response = client.post(try_url(StatusModel.objects.get(key=model_id)), form)
    assert response.status_code == status, response.content
    return response.json()


def try_over_api(api_client, model_id: str, body: dict) -> dict:
    """The REST endpoint's answer, asked with a reader's token."""
    response = api_client(read=True).post(f"/api/v1/models/{model_id}/try", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def version_document(model_id: str) -> str:
    return json.dumps(canonical_order(ModelVersion.objects.get(model__key=model_id, number=1).document))


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize("source", ["version", "document"])
@pytest.mark.parametrize(("model_id", "state", "context", "event_type", "data", "spec_outcome"), CASES)
def test_try_answers_as_the_api_does(
    admin_client, api_client, source, model_id, state, context, event_type, data, spec_outcome
):
    event = {"event_type": event_type, "data": data, "occurred_at": "2026-11-26T10:00:00Z"}
    form_source = {"version": "1"} if source == "version" else {"document": version_document(model_id)}

    answer = try_in_admin(admin_client, model_id, source=form_source, state=state, context=context, event=event)
    api = try_over_api(api_client, model_id, {"version": 1, "state": state, "context": context, "event": event})

    assert answer["outcome"] == spec_outcome
    assert answer == {key: api[key] for key in ANSWER_KEYS}


def test_try_the_form_as_it_is_not_as_saved(admin_client, orders, api_client):
    # Given a form in which warehouse.packed leaves received instead of paid, not saved
    form = orders_draft(lambda d: d["transitions"][2].update({"from": ["received"]}))
    event = {"event_type": "warehouse.packed"}

    tried_form = try_in_admin(
        admin_client, ORDERS, source={"document": json.dumps(form)}, state="received", context={}, event=event
    )
    tried_version = try_in_admin(
        admin_client, ORDERS, source={"version": "1"}, state="received", context={}, event=event
    )

    assert (tried_form["outcome"], tried_form["to_state"]) == ("applied", "packed")
    assert (tried_version["outcome"], tried_version["waits_for"]) == ("parked", ["paid"])
    # The same form saved as the draft answers the same over the API
    post_designer(admin_client, change_url(orders), form)
    api = try_over_api(api_client, ORDERS, {"version": "draft", "state": "received", "event": event})
    assert tried_form == {key: api[key] for key in ANSWER_KEYS}


def test_try_parked_says_what_it_waits_for(admin_client, orders):
    answer = try_in_admin(
        admin_client,
        ORDERS,
        source={"version": "1"},
        state="received",
        context={},
        event={"event_type": "carrier.picked_up"},
    )

    assert (answer["outcome"], answer["waits_for"]) == ("parked", ["packed"])
    assert answer["reason"] == "waits for the instance to reach a state that 'carrier.picked_up' leaves"


def test_try_failed_when_the_handler_chooses_an_undeclared_move(admin_client, example_model, api_client):
    model_import(document={**orders_draft(), "id": "fragile-orders", "handler": "jumps_ahead"})
    event = {"event_type": "payment.captured", "data": {"jump": True}, "occurred_at": "2026-11-26T10:00:00Z"}

    answer = try_in_admin(
        admin_client, "fragile-orders", source={"version": "1"}, state="received", context={"a": 1}, event=event
    )
    api = try_over_api(
        api_client, "fragile-orders", {"version": 1, "state": "received", "context": {"a": 1}, "event": event}
    )

    assert answer["outcome"] == "failed"
    assert "a move the model does not declare" in answer["reason"]
    assert (answer["to_state"], answer["context"], answer["steps"]) == ("received", {"a": 1}, [])
    assert answer == {key: api[key] for key in ANSWER_KEYS}


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        ({"version": "1", "event": "{"}, "The event is not valid JSON: "),
        ({"version": "1", "event": "[]"}, "The event must be a JSON object, in braces {…}."),
        ({"version": "1", "event": ""}, 'Give the event to try, e.g. {"event_type": "payment.captured"}.'),
        (
            {"version": "1", "state": "received", "context": "{'a': 1}", "event": "{}"},
            "The context is not valid JSON: ",
        ),
        ({"version": "1", "state": "received", "context": "[1]", "event": "{}"}, "The context must be a JSON object"),
        (
            {"version": "1", "context": '{"a": 1}', "event": '{"event_type": "order.placed"}'},
            "An instance that does not exist yet has no context: choose a state, or no context.",
        ),
        ({"version": "1", "state": "shiped", "event": "{}"}, "'shiped' is not a state of the model tried."),
        ({"event": '{"event_type": "x"}'}, "Choose the form or a published version to try."),
        ({"version": "draft", "event": '{"event_type": "x"}'}, "Choose the form or a published version to try."),
        ({"version": "9", "event": '{"event_type": "x"}'}, "order-fulfilment has no version 9."),
        ({"document": "{", "event": '{"event_type": "x"}'}, "The document is not valid JSON: "),
    ],
)
def test_try_refuses_what_it_cannot_read_in_words(admin_client, orders, form, detail):
    response = admin_client.post(try_url(orders), form)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)


def test_try_an_invalid_event_names_its_fields(admin_client, orders):
    response = admin_client.post(
        try_url(orders), {"version": "1", "event": json.dumps({"event_type": "x", "model_id": "claim"})}
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The event is not valid.",
        "problems": ["event.model_id: must be 'order-fulfilment', the model of the URL, or left out"],
    }


def test_try_an_invalid_form_is_refused_with_its_problems_in_words(admin_client, orders):
    form = orders_draft(lambda d: d["transitions"][2].update(to="pakced"))

    response = admin_client.post(
        try_url(orders), {"document": json.dumps(form), "event": '{"event_type": "order.placed"}'}
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The form has problems; fix them to try it.",
        "problems": ["Transition 3 (warehouse.packed): 'pakced' is not a state of this model."],
    }


def test_try_answers_only_a_post_for_a_model_that_exists(admin_client, orders):
    assert admin_client.get(try_url(orders)).status_code == 405
    missing = admin_client.post(reverse("admin:models_registry_statusmodel_try", args=[999]), {"version": "1"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "No such model."})


def test_the_designer_links_the_models_dashboard(admin_client, orders):
    page = admin_client.get(change_url(orders)).content.decode()

    assert f'href="/admin/dashboard/{ORDERS}/"' in page
