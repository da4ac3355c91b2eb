"""The version list (who published each version, when, how many instances are on it) and the diff
between two versions in the admin."""

from __future__ import annotations

import copy
import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from models_registry.models import ModelVersion
from models_registry.services import model_import
from tests.conftest import load_example_model
from tests.events import ingest, order_event
from tests.models_registry.test_definition import MINIMAL
from tracking.apply.applier import instances_apply_pending
from tracking.models import ProcessInstance

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:models_registry_modelversion_changelist"


def text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def diff_url(version, **query) -> str:
    url = reverse("admin:models_registry_modelversion_diff", args=[version.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def second_version(admin_user=None) -> tuple[ModelVersion, ModelVersion]:
    """The example, then a version 2 with its name changed, a state relabelled, one added, a
    transition removed, one changed, two added and a milestone group added."""
    first = load_example_model()
    document = copy.deepcopy(first.document)
    document["name"] = "Orders"
    document["states"][1]["label"] = "Paid"
    document["states"].append({"key": "returned", "label": "Returned", "kind": "failure"})
    document["transitions"] = [t for t in document["transitions"] if t["event"] != "payment.failed"]
    document["transitions"][0]["from"] = ["received"]
    document["transitions"].append({"event": "parcel.returned", "from": ["shipped"], "to": "returned"})
    document["transitions"].append({"event": "payment.declined", "from": ["received"], "to": "on_hold"})
    document["milestones"] = [{"key": "ordered", "label": "Ordered", "states": ["received", "paid"]}]
    second, _ = model_import(document=document, user=admin_user)
    return first, second


def test_the_list_shows_who_published_when_and_the_instances_on_each_version(admin_client, admin_user):
    first, second = second_version(admin_user)
    ingest(order_event("e1", "A", "order.placed"), order_event("e2", "B", "order.placed"))
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))
    assert set(ProcessInstance.objects.values_list("version", flat=True)) == {second.pk}

    response = admin_client.get(reverse(CHANGELIST))

    table = re.search(r'<table id="result_list">.*?</thead>', response.content.decode(), flags=re.S).group(0)
    headers = [re.sub(r"<[^>]+>|\d", " ", h).split() for h in re.findall(r"<th [^>]*>(.*?)</th>", table, re.S)]
    headers = [" ".join(words) for words in headers]
    assert headers == ["Model", "Number", "Published at", "Published by", "Instances on it now", "Changes"]
    rows = {(row.number, row.instance_count) for row in response.context["cl"].result_list}
    assert rows == {(2, 2), (1, 0)}
    page = text(response)
    assert "admin" in page  # who published version 2
    assert diff_url(second) in response.content.decode()


def test_the_list_counts_instances_in_one_query_whatever_the_number_of_versions(admin_client):
    load_example_model()
    model_import(document=MINIMAL)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse(CHANGELIST))
    second_version()
    for n in range(3):
        model_import(document={**MINIMAL, "name": f"Minimal {n}"})
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse(CHANGELIST))

    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_list_filters_by_model(admin_client):
    second_version()
    minimal, _ = model_import(document=MINIMAL)

    response = admin_client.get(reverse(CHANGELIST), {"model__id__exact": minimal.model.pk})

    assert [v.pk for v in response.context["cl"].result_list] == [minimal.pk]


def test_the_diff_says_what_changed_by_section_against_the_version_before(admin_client):
    _, second = second_version()

    response = admin_client.get(diff_url(second))

    assert response.status_code == 200
    page = text(response)
    assert "From version 1" in page
    assert "To version 2" in page
    assert "8 changes: 4 added, 1 removed, 3 changed." in page
    sections = re.findall(r'data-section="([a-z]+)"', response.content.decode())
    assert sections == ["model", "states", "transitions", "milestones"]
    assert "changed Name 'Order fulfilment' → 'Orders'" in page
    assert "changed State 'paid' label: 'Payment confirmed' → 'Paid'" in page
    assert "added State 'returned'" in page
    assert "removed Transition 'payment.failed' to 'on_hold'" in page
    assert "changed Transition 'payment.captured' to 'paid' from: received, on_hold → received" in page
    assert "added Transition 'parcel.returned' to 'returned'" in page
    assert "added Milestone 'ordered'" in page


def test_the_diff_compares_any_two_versions_chosen_in_either_order(admin_client):
    first, second = second_version()

    backwards = admin_client.get(diff_url(first, against=2))
    chosen = admin_client.get(diff_url(second, against=1, to=1))

    assert "removed State 'returned'" in text(backwards)
    assert "Going back" in text(backwards)
    assert chosen.status_code == 302
    assert chosen.url == diff_url(first, against=1)
    same = text(admin_client.get(chosen.url))
    assert "No changes: versions 1 and 1 are the same." in same


def test_the_diff_of_an_only_version_says_there_is_nothing_to_compare(admin_client):
    version = load_example_model()

    page = text(admin_client.get(diff_url(version)))

    assert "Version 1 is the only version of order-fulfilment" in page


def test_the_diff_of_the_first_version_compares_it_with_the_next(admin_client):
    first, _ = second_version()

    page = text(admin_client.get(diff_url(first)))

    assert "From version 2" in page
    assert "To version 1" in page


def test_a_version_that_does_not_exist_is_said(admin_client):
    _, second = second_version()

    response = admin_client.get(diff_url(second, against=9))

    assert "order-fulfilment has no version “9”. Choose the version to compare with." in text(response)


def test_the_version_page_links_the_diff(admin_client):
    _, second = second_version()

    page = admin_client.get(reverse("admin:models_registry_modelversion_change", args=[second.pk])).content.decode()

    assert f'<a href="{diff_url(second)}">Compare with…</a>' in page


def test_the_diff_is_for_staff_with_the_permission_only(client):
    _, second = second_version()
    client.force_login(get_user_model().objects.create_user("customer", password="unused"))
    assert client.get(diff_url(second)).url.startswith(reverse("admin:login"))

    client.force_login(get_user_model().objects.create_user("clerk", password="unused", is_staff=True))
    assert client.get(diff_url(second)).status_code == 403
