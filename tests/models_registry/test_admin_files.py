"""Model files in the admin: import as a draft (and every way a file is refused), downloads of a
version and of the draft, and the commands' round-trip guarantee through the admin."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from models_registry.models import ModelVersion, StatusModel
from models_registry.services import draft_document, dump_documents
from tests.conftest import edit_draft, load_example_model
from tests.models_registry.test_definition import MINIMAL

pytestmark = pytest.mark.django_db

IMPORT = "admin:models_registry_statusmodel_import"


def upload(client, name: str, content: str | bytes, *, follow: bool = False):
    data = content.encode() if isinstance(content, str) else content
    return client.post(reverse(IMPORT), {"file": SimpleUploadedFile(name, data)}, follow=follow)


def errors(response) -> list[str]:
    return list(response.context["form"].errors["file"])


def version_download(client, version, fmt: str):
    response = client.get(reverse("admin:models_registry_modelversion_export", args=[version.pk]), {"format": fmt})
    assert response.status_code == 200
    return response


def draft_download(client, status_model, fmt: str):
    response = client.get(reverse("admin:models_registry_statusmodel_export", args=[status_model.pk]), {"format": fmt})
    assert response.status_code == 200
    return response


def test_the_models_list_offers_the_import(admin_client):
    response = admin_client.get(reverse("admin:models_registry_statusmodel_changelist"))

    assert f'href="{reverse(IMPORT)}"' in response.content.decode()
    assert "Import a model file" in response.content.decode()
    assert admin_client.get(reverse(IMPORT)).status_code == 200


def test_a_new_model_file_becomes_a_draft_and_nothing_is_published(admin_client):
    response = upload(admin_client, "minimal.yaml", dump_documents([MINIMAL], fmt="yaml"), follow=True)

    status_model = StatusModel.objects.get(key="minimal")
    assert response.redirect_chain[-1][0] == reverse("admin:models_registry_statusmodel_change", args=[status_model.pk])
    assert "Imported minimal.yaml: it is the draft of the new model minimal." in response.content.decode()
    assert status_model.draft["states"][1]["kind"] == "success"
    assert status_model.draft["park_ttl"] == "P7D"  # validated: the canonical form, defaults filled
    assert not ModelVersion.objects.exists()


def test_a_file_replaces_the_draft_of_an_existing_model_and_publishes_nothing(admin_client):
    version = load_example_model()
    document = copy.deepcopy(version.document)
    document["states"][0]["label"] = "We have your order"

    response = upload(admin_client, "orders.json", json.dumps(document), follow=True)

    assert "it replaces the draft of order-fulfilment" in response.content.decode()
    status_model = StatusModel.objects.get(key="order-fulfilment")
    assert status_model.draft["states"][0]["label"] == "We have your order"
    assert list(status_model.versions.values_list("number", flat=True)) == [1]
    assert ModelVersion.objects.get().document["states"][0]["label"] == "Order received"


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("minimal.yaml", "id: minimal\nname: Minimal\n  states: []\n", "Line 3, column 9: invalid YAML"),
        ("minimal.json", '{"id": "minimal",\n "name": "Minimal" "states": []}\n', "Line 2, column 20: invalid JSON"),
        ("minimal.yaml", b"id: minimal\nname: Mini\xffmal\n", "Line 2, column 11: not UTF-8"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line_and_column(admin_client, name, content, where):
    response = upload(admin_client, name, content)

    assert response.status_code == 200
    [message] = errors(response)
    assert message.startswith(where), message
    assert message.endswith("Nothing was imported.")
    assert "The file was not imported." in response.content.decode()
    assert not StatusModel.objects.exists()


def test_an_invalid_model_is_refused_with_its_problems_in_words_and_nothing_stored(admin_client):
    version = load_example_model()
    status_model = version.model
    draft_before = draft_document(status_model=status_model)
    document = copy.deepcopy(version.document)
    document["transitions"][2]["to"] = "nowhere"
    document["initial_state"] = "Received!"

    response = upload(admin_client, "orders.yaml", dump_documents([document], fmt="yaml"))

    messages = errors(response)
    assert messages[0] == "The model in this file has 2 problems; nothing was imported:"
    assert "Transition 3 (warehouse.packed): 'nowhere' is not a state of this model." in messages
    assert any(message.startswith("Initial state:") for message in messages)
    status_model.refresh_from_db()
    assert draft_document(status_model=status_model) == draft_before
    assert ModelVersion.objects.count() == 1


def test_a_new_invalid_model_is_not_created(admin_client):
    response = upload(admin_client, "minimal.json", json.dumps({**MINIMAL, "states": []}))

    assert errors(response)[0].startswith("The model in this file has")
    assert not StatusModel.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("minimal.txt", "id: minimal", "“minimal.txt” is not a model file: choose a .yaml, .yml or .json file."),
        ("models.yaml", dump_documents([MINIMAL, {**MINIMAL, "id": "other"}], fmt="yaml"), "The file holds 2 models"),
        ("empty.yaml", "", "The submitted file is empty."),
        ("comment.yaml", "# nothing here\n", "The file holds no model."),
    ],
)
def test_files_that_are_not_one_model_are_refused(admin_client, name, content, message):
    response = upload(admin_client, name, content)

    assert errors(response)[0].startswith(message)
    assert not StatusModel.objects.exists()


def test_staff_without_the_permission_cannot_import_or_download(client):
    version = load_example_model()
    staff = get_user_model().objects.create_user("clerk", password="unused", is_staff=True)
    client.force_login(staff)

    assert upload(client, "minimal.yaml", dump_documents([MINIMAL], fmt="yaml")).status_code == 403
    assert client.get(reverse(IMPORT)).status_code == 403
    export = reverse("admin:models_registry_modelversion_export", args=[version.pk])
    assert client.get(export).status_code == 403
    draft = reverse("admin:models_registry_statusmodel_export", args=[version.model.pk])
    assert client.get(draft).status_code == 403
    assert not StatusModel.objects.filter(key="minimal").exists()


def test_people_who_are_not_staff_are_sent_to_the_login(client):
    version = load_example_model()
    client.force_login(get_user_model().objects.create_user("customer", password="unused"))

    for url in [
        reverse(IMPORT),
        reverse("admin:models_registry_modelversion_export", args=[version.pk]),
        reverse("admin:models_registry_statusmodel_export", args=[version.model.pk]),
    ]:
        assert client.get(url).url.startswith(reverse("admin:login")), url
    response = upload(client, "minimal.yaml", dump_documents([MINIMAL], fmt="yaml"))
    assert response.url.startswith(reverse("admin:login"))
    assert not StatusModel.objects.filter(key="minimal").exists()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_version_downloads_as_the_bytes_export_models_writes(admin_client, fmt):
    version = load_example_model()
    written = StringIO()
    call_command("export_models", "order-fulfilment", format=fmt, stdout=written)

    response = version_download(admin_client, version, fmt)

    assert response.content == written.getvalue().encode()
    assert response["Content-Type"] == f"application/{fmt}; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="order-fulfilment-v1.{fmt}"'


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_then_import_in_the_admin_gives_the_same_document(admin_client, fmt):
    # Given a published version, downloaded from its page
    version = load_example_model()
    exported = version_download(admin_client, version, fmt).content
    edit_draft("order-fulfilment", lambda draft: draft["states"].pop())

    # When the file is imported again
    upload(admin_client, f"order-fulfilment-v1.{fmt}", exported)

    # Then the draft is the version's document, and downloads as the same bytes
    status_model = StatusModel.objects.get(key="order-fulfilment")
    assert draft_document(status_model=status_model) == version.document
    assert draft_download(admin_client, status_model, fmt).content == exported
    assert ModelVersion.objects.count() == 1


def test_the_draft_downloads_with_its_problems_as_it_is(admin_client):
    version = load_example_model()
    edit_draft("order-fulfilment", lambda draft: draft["transitions"][0].update(to="nowhere", note="mine"))

    response = draft_download(admin_client, version.model, "json")

    assert response["Content-Disposition"] == 'attachment; filename="order-fulfilment-draft.json"'
    document = json.loads(response.content)
    assert document["transitions"][0]["to"] == "nowhere"
    assert document["transitions"][0]["note"] == "mine"  # unknown keys too: nothing of the draft is lost


def test_an_unknown_format_is_not_found(admin_client):
    version = load_example_model()

    response = admin_client.get(
        reverse("admin:models_registry_modelversion_export", args=[version.pk]), {"format": "xml"}
    )

    assert response.status_code == 404


def test_the_version_page_and_the_designer_link_the_downloads(admin_client):
    version = load_example_model()
    export = reverse("admin:models_registry_modelversion_export", args=[version.pk])
    draft = reverse("admin:models_registry_statusmodel_export", args=[version.model.pk])

    page = admin_client.get(reverse("admin:models_registry_modelversion_change", args=[version.pk])).content.decode()
    designer = admin_client.get(reverse("admin:models_registry_statusmodel_change", args=[version.model.pk]))

    assert f'href="{export}?format=yaml"' in page
    assert f'href="{export}?format=json"' in page
    assert f'href="{draft}?format=yaml"' in designer.content.decode()
    assert f'href="{draft}?format=json"' in designer.content.decode()
