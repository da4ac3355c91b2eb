"""The designer in Debian's headless Chromium: a business defines, checks, draws, tries and publishes a
model with the controls only (no JSON typed). Screenshots go to test-artifacts/; with
STATUSTRACKER_UPDATE_DOCS_SCREENSHOT set, the 1280-px ones also become docs/designer.png and
docs/designer-try.png.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from models_registry.models import ModelVersion
from tests.conftest import ROOT
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_version_diagram_browser import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page  # pages opened as a logged-in superuser
LOAN_STATES = ["applied", "under_review", "approved", "declined"]


def screenshot(page, name: str, *, docs: str | None = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(path, ROOT / "docs" / docs)


def row(page, path: str):
    return page.locator(f'[data-row="{path}"]')


def control(page, path: str, label: str):
    return row(page, path).get_by_label(label, exact=True)


def drawn_states(page) -> list[str]:
    expect(page.locator("#designer-diagram .model-diagram-drawn svg")).to_be_visible()
    return page.locator("#designer-diagram svg [data-state]").evaluate_all("nodes => nodes.map(n => n.dataset.state)")


def wait_checked(page) -> None:
    """Until the page shows the server's reading of the form as it is now (problems and diagram)."""
    expect(page.locator("#designer-form:not([data-checking])")).to_be_attached()


def rename_state(page, index: int, label: str, key: str, kind: str | None = None) -> None:
    path = f"states[{index}]"
    control(page, path, "Label").fill(label)
    key_input = control(page, path, "Key")
    key_input.fill(key)
    key_input.blur()
    if kind:
        control(page, path, "Kind").select_option(kind)


def define_loan(page) -> None:
    """The four-step loan from the new-model form's skeleton, with clicks, selects and short texts."""
    page.get_by_label("Model id").fill("loan-application")
    page.get_by_label("Name", exact=True).fill("Loan application")
    rename_state(page, 0, "Applied", "applied")
    rename_state(page, 1, "Under review", "under_review")
    rename_state(page, 2, "Approved", "approved")
    page.get_by_role("button", name="Add a state").click()
    control(page, "states[3]", "Label").fill("Declined")  # a new state's key follows its label
    control(page, "states[3]", "Kind").select_option("failure")

    control(page, "transitions[0]", "Event type").fill("loan.review_started")
    control(page, "transitions[1]", "Event type").fill("loan.approved")
    page.get_by_role("button", name="Add a transition").click()
    control(page, "transitions[2]", "Event type").fill("loan.declined")
    sources = row(page, "transitions[2]")
    sources.get_by_label("Applied (applied)").uncheck()
    sources.get_by_label("Under review (under_review)").check()
    control(page, "transitions[2]", "To").select_option("declined")


def test_a_business_defines_the_loan_model_with_the_controls_and_publishes_it(admin_page):
    page = admin_page(reverse("admin:models_registry_statusmodel_add"))
    define_loan(page)
    wait_checked(page)
    expect(page.locator("#designer-status")).to_contain_text("Ready to publish")
    assert sorted(drawn_states(page)) == sorted(LOAN_STATES)
    screenshot(page, "designer-new-1280.png")

    page.get_by_role("button", name="Publish").click()

    expect(page.locator(".messagelist")).to_contain_text("Published loan-application version 1")
    document = ModelVersion.objects.get(model__key="loan-application").document
    assert document["initial_state"] == "applied"
    assert [(s["key"], s["kind"]) for s in document["states"]] == [
        ("applied", "step"), ("under_review", "step"), ("approved", "success"), ("declined", "failure"),
    ]  # fmt: skip
    assert [(t["event"], t["from"], t["to"]) for t in document["transitions"]] == [
        ("loan.review_started", ["applied"], "under_review"),
        ("loan.approved", ["under_review"], "approved"),
        ("loan.declined", ["under_review"], "declined"),
    ]
    for width in (1280, 1920, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, width)
        screenshot(page, f"designer-{width}.png", docs="designer.png" if width == 1280 else None)
    assert not page.problems
