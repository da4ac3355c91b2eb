"""Versions, import and export in Debian's headless Chromium: import a model file from the models
list (a malformed one first), download a version and the draft, and read the diff between two
versions. Screenshots go to test-artifacts/ at 1280 and 390 px.
"""

from __future__ import annotations

import copy
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from models_registry.models import StatusModel
from models_registry.services import draft_document, model_import
from tests.conftest import ROOT, load_example_model
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_version_diagram_browser import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page  # pages opened as a logged-in superuser


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def two_versions():
    first = load_example_model()
    document = copy.deepcopy(first.document)
    document["states"][1]["label"] = "Paid"
    document["states"].append({"key": "returned", "label": "Returned to us", "kind": "failure"})
    document["transitions"].append({"event": "parcel.returned", "from": ["shipped"], "to": "returned"})
    document["transitions"][0]["from"] = ["received"]
    document["transitions"][1]["from"] = ["received", "paid"]
    document["milestones"] = [
        {"key": "ordered", "label": "Ordered", "states": ["received", "paid"]},
        {"key": "on_its_way", "label": "On its way to you", "states": ["packed", "shipped"]},
    ]
    second, _ = model_import(document=document)
    return first, second


def test_a_model_file_is_imported_as_a_draft_and_downloaded_again(admin_page, tmp_path):
    _, second = two_versions()
    malformed = tmp_path / "orders.yaml"
    malformed.write_text("id: order-fulfilment\nstates:\n  - key: received\n label: Received\n")

    # A malformed file first: refused with where it is wrong, nothing stored.
    page = admin_page(reverse("admin:models_registry_statusmodel_changelist"))
    page.get_by_role("link", name="Import a model file").click()
    page.get_by_label("Model file").set_input_files(str(malformed))
    page.get_by_role("button", name="Import as draft").click()
    expect(page.locator(".errorlist")).to_contain_text("Line 4, column 2: invalid YAML")
    assert draft_document(status_model=second.model) == second.document
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, width)
        screenshot(page, f"model-import-error-{width}.png")

    # Version 2 downloaded from its page: the bytes export_models writes.
    page.goto(page.url.split("/admin/")[0] + reverse("admin:models_registry_modelversion_change", args=[second.pk]))
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.expect_download() as download:
        page.get_by_role("link", name="Download YAML").click()
    downloaded = Path(download.value.path()).read_bytes()
    written = StringIO()
    call_command("export_models", "order-fulfilment", stdout=written)
    assert downloaded == written.getvalue().encode()
    assert download.value.suggested_filename == "order-fulfilment-v2.yaml"

    # Imported again after the draft was changed: the draft is version 2's document.
    status_model = StatusModel.objects.get(key="order-fulfilment")
    status_model.draft = {**status_model.draft, "name": "Something else"}
    status_model.save()
    file = tmp_path / download.value.suggested_filename
    file.write_bytes(downloaded)
    page.goto(page.url.split("/admin/")[0] + reverse("admin:models_registry_statusmodel_import"))
    page.get_by_label("Model file").set_input_files(str(file))
    page.get_by_role("button", name="Import as draft").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "Imported order-fulfilment-v2.yaml: it replaces the draft of order-fulfilment."
    )
    status_model.refresh_from_db()
    assert draft_document(status_model=status_model) == second.document
    assert status_model.versions.count() == 2

    # The designer offers the draft's download: the same bytes again.
    with page.expect_download() as draft_download:
        page.locator(".designer-files").get_by_role("link", name="YAML").click()
    assert Path(draft_download.value.path()).read_bytes() == downloaded
    assert page.problems == []


def test_the_diff_between_two_versions_reads_by_section(admin_page):
    first, second = two_versions()

    page = admin_page(reverse("admin:models_registry_modelversion_changelist"))
    expect(page.locator("#result_list")).to_contain_text("Instances on it now")
    screenshot(page, "version-list-1280.png")
    page.locator("#result_list tr", has_text="order-fulfilment").first.get_by_role("link", name="Compare with…").click()

    expect(page.locator(".version-diff-summary")).to_have_text("7 changes: 4 added, 0 removed, 3 changed.")
    sections = page.locator(".version-diff-section h2").all_inner_texts()
    assert sections == ["States", "Transitions", "Milestones"]
    expect(page.locator('[data-section="states"]')).to_contain_text("label: 'Payment confirmed' → 'Paid'")
    expect(page.locator('[data-section="transitions"]')).to_contain_text("from: received, on_hold → received")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, width)
        screenshot(page, f"version-diff-{width}.png")

    # The other way round, chosen with the selects.
    page.get_by_label("From").select_option("2")
    page.get_by_label("to", exact=True).select_option("1")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator(".version-diff-versions")).to_contain_text("To version 1")
    expect(page.locator('[data-section="states"]')).to_contain_text("State 'returned'")
    expect(page.locator('[data-section="states"] .version-change-removed')).to_contain_text("State 'returned'")
    assert page.url.endswith(reverse("admin:models_registry_modelversion_diff", args=[first.pk]) + "?against=2")

    # The version page links the diff.
    page.goto(page.url.split("/admin/")[0] + reverse("admin:models_registry_modelversion_change", args=[second.pk]))
    page.get_by_role("link", name="Compare with…").click()
    expect(page.locator(".version-diff-versions")).to_contain_text("From version 1")
    page.set_viewport_size({"width": 390, "height": 900})
    assert_fits(page, 390)
    assert page.problems == []
