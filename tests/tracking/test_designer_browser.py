"""The designer in Debian's headless Chromium: a business defines, checks, draws, tries and publishes a
model with the controls only (no JSON typed). Screenshots go to test-artifacts/; with
STATUSTRACKER_UPDATE_DOCS_SCREENSHOT set, the 1280-px ones also become docs/designer.png and
docs/designer-try.png.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from models_registry.models import ModelVersion, StatusModel
from models_registry.services import model_import
from tests.conftest import ROOT
from tests.loan_models import LOAN
from tests.tracking import test_customer_page_browser, test_version_diagram_browser
from tests.tracking.test_version_diagram_browser import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = ROOT / "test-artifacts"
browser = test_customer_page_browser.browser  # the same Debian Chromium, once per module
admin_page = test_version_diagram_browser.admin_page  # pages opened as a logged-in superuser
LOAN_STATES = ["applied", "under_review", "approved", "declined"]


def screenshot(page, name: str, *, docs: str | None = None, part=None) -> None:
    """The whole page, only ``part`` (a locator), or with ``part=page`` what the screen shows."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if part is page:  # what the screen shows
        page.screenshot(path=str(path))
    elif part is not None:
        part.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("STATUSTRACKER_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(path, ROOT / "docs" / docs)


def designer_path(key: str) -> str:
    return reverse("admin:models_registry_statusmodel_change", args=[StatusModel.objects.get(key=key).pk])


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
        screenshot(page, f"designer-{width}.png")
    assert not page.problems


def test_a_problem_stands_on_its_row_is_fixed_there_and_the_model_published(admin_page):
    # Given the published loan, edited: a new state that no transition reaches
    model_import(document=LOAN)
    page = admin_page(designer_path("loan"))
    page.get_by_role("button", name="Add a state").click()
    control(page, "states[6]", "Label").fill("Escalated")
    control(page, "states[6]", "Label").blur()
    wait_checked(page)
    expect(row(page, "transitions[0]").get_by_label("Escalated (escalated)")).to_be_visible()

    # Then the problem is worded and placed on that state's key, and publishing keeps it a draft
    problem = row(page, "states[6]").locator(".designer-field-problems")
    expect(problem).to_have_text("State 7 (escalated): State 'escalated' is unreachable from 'applied'.")
    expect(page.locator("#designer-status")).to_contain_text("1 problem to fix")
    expect(page.locator("#designer-diagram svg [data-state=escalated]")).to_have_class(re.compile("unreachable"))
    screenshot(page, "designer-problem-1280.png")
    page.set_viewport_size({"width": 1920, "height": 1080})
    row(page, "states[6]").scroll_into_view_if_needed()
    screenshot(page, "designer-problem-1920.png", docs="designer.png", part=page)
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messagelist")).to_contain_text("was not published")
    assert ModelVersion.objects.filter(model__key="loan").count() == 1
    assert StatusModel.objects.get(key="loan").draft["states"][6]["key"] == "escalated"  # kept as a draft

    # When a transition reaches it, chosen with the controls
    page.get_by_role("button", name="Add a transition").click()
    new = "transitions[6]"
    control(page, new, "Event type").fill("review.escalated")
    row(page, new).locator("fieldset").get_by_label("Application received (applied)").uncheck()
    row(page, new).locator("fieldset").get_by_label("Under review (under_review)").check()
    control(page, new, "To").select_option("escalated")
    wait_checked(page)
    expect(page.locator("#designer-status")).to_contain_text("Ready to publish")
    changes = page.locator("#designer-changes")
    expect(changes).to_contain_text("state 'escalated' added")
    expect(changes).to_contain_text("transition 'review.escalated' to 'escalated' added")

    # Then it publishes as version 2
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messagelist")).to_contain_text("Published loan version 2")
    assert ModelVersion.objects.get(model__key="loan", number=2).document["transitions"][6]["to"] == "escalated"
    assert not page.problems


def test_renaming_a_state_renames_it_everywhere_in_the_form(admin_page):
    model_import(document=LOAN)
    page = admin_page(designer_path("loan"))
    key = control(page, "states[1]", "Key")
    key.fill("in_review")
    key.blur()
    wait_checked(page)

    expect(page.locator("#designer-status")).to_contain_text("Ready to publish")
    expect(control(page, "transitions[0]", "To")).to_have_value("in_review")
    expect(row(page, "transitions[3]").get_by_label("Under review (in_review)")).to_be_checked()
    assert sorted(drawn_states(page)) == sorted(
        ["in_review" if s["key"] == "under_review" else s["key"] for s in LOAN["states"]]
    )


def test_an_event_is_tried_on_the_form_and_on_a_version(admin_page):
    model_import(document=LOAN)
    page = admin_page(designer_path("loan"))
    wait_checked(page)
    try_panel = page.locator("#designer-try")

    # A sample for each event type is offered; tried in a state where it applies
    try_panel.get_by_label("The instance is in").select_option("under_review")
    try_panel.locator("#designer-try-sample").select_option(label="loan.approved")
    expect(try_panel.locator("#designer-try-event")).to_have_value(re.compile('"event_type": "loan.approved"'))
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".designer-trial")).to_contain_text(
        "Moves the instance from Under review (under_review) to Approved (approved)."
    )
    screenshot(page, "designer-try-1280.png", docs="designer-try.png", part=try_panel)

    # Too early: parked, with what it waits for
    try_panel.get_by_label("The instance is in").select_option("applied")
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".designer-trial")).to_contain_text("Waits (parked) until the instance is in Under review")

    # No instance yet, and a type that does not start one
    try_panel.get_by_label("The instance is in").select_option("")
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".designer-outcome")).to_have_text(re.compile("parked|ignored"))

    # An unsaved edit is tried as it is on the form, the published version as it was
    approval = row(page, "transitions[3]").locator("fieldset")
    approval.get_by_label("Application received (applied)").check()
    approval.get_by_label("Under review (under_review)").uncheck()
    try_panel.get_by_label("The instance is in").select_option("under_review")
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".designer-outcome")).to_have_text("ignored")
    try_panel.get_by_label("Try on").select_option("1")
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".designer-trial")).to_contain_text("to Approved (approved)")

    # A broken event is answered in words
    try_panel.locator("#designer-try-event").fill('{"event_type": ')
    try_panel.get_by_role("button", name="Try the event").click()
    expect(try_panel.locator(".errornote")).to_contain_text("The event is not valid JSON")
    assert [p for p in page.problems if "status of 400" not in p] == []  # the broken event's answer


def test_the_customer_page_is_previewed_with_the_branch_shown_neutrally(admin_page):
    model_import(document=LOAN)
    page = admin_page(designer_path("loan"))
    panel = page.locator("#designer-preview")
    panel.get_by_label("For a request in").select_option("under_review")
    with page.context.expect_page() as opened:
        panel.get_by_role("link", name="Open the preview").click()
    preview = opened.value
    preview.wait_for_load_state()

    expect(preview.get_by_text("Preview — not a real request")).to_be_visible()
    steps = preview.locator(".steps, ol").first
    expect(steps).to_contain_text("Decision")
    expect(steps).to_contain_text("Approved or Declined")
    # The step after the current one is the decision, never one of its branches
    assert preview.locator("[aria-current=step] ~ li").first.inner_text().startswith("Decision")
    screenshot(preview, "designer-preview-1280.png")
