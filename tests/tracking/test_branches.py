"""The customer page's branch rule (docs/customer-page.md, "Branches"), on plain documents: no database.

Where the path ahead branches, the page shows one neutral step ("Decision: Approved or Declined")
instead of presenting one branch as the next step; once the instance is past the branch, the step
it took is shown, and the steps of the branch not taken are not.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models_registry.services import parse_documents
from models_registry.validation import document_validate
from tests.conftest import EXAMPLES
from tests.loan_models import DELIVERY, LOAN, LOAN_PAID_OUT, ROUTES
from tracking.progress.customer_page import HistoryRow, build_page
from tracking.progress.milestones import AWAY, BRANCH, CERTAIN, BranchPlan, milestone_groups

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def page_after(document: dict, *states: str, plan: BranchPlan | None = None):
    """The page of an instance that went through ``states`` and is in the last one."""
    history = [HistoryRow(state, T0 + timedelta(hours=i)) for i, state in enumerate(states)]
    return build_page(
        document=document,
        state=states[-1],
        context={},
        history=history,
        updated_at=history[-1].occurred_at,
        state_entered_at=history[-1].occurred_at,
        stats={},
        minimum_completed=20,
        now=T0 + timedelta(days=1),
        plan=plan,
    )


def bar(document: dict, *states: str) -> list[str]:
    """Each step as "label (status)", the current one starred, a neutral one as "<branch>: options"."""
    shown = []
    for step in page_after(document_validate(document), *states).steps:
        text = f"<{step.branch}>: {' | '.join(step.options)}" if step.branch else step.label
        shown.append(f"{'*' if step.is_current else ''}{text} ({step.status})")
    return shown


def example(name: str) -> dict:
    return parse_documents((EXAMPLES / name).read_text(), filename=name)[0]


# --- the loan: applied -> under review -> approved (success) or declined (failure) -----------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(
            ("applied",),
            [
                "*Application received (current)",
                "Under review (upcoming)",
                "<decision>: Approved | Declined (upcoming)",
            ],
            id="before the branch",
        ),
        pytest.param(
            ("applied", "under_review"),
            ["Application received (done)", "*Under review (current)", "<decision>: Approved | Declined (upcoming)"],
            id="at the branch",
        ),
        pytest.param(
            ("applied", "under_review", "documents_needed"),
            ["Application received (done)", "*Under review (current)", "<decision>: Approved | Declined (upcoming)"],
            id="at the branch, on a detour",
        ),
        pytest.param(
            ("applied", "under_review", "approved"),
            ["Application received (done)", "Under review (done)", "*Approved (done)"],
            id="after it: approved",
        ),
        pytest.param(
            ("applied", "under_review", "declined"),
            ["Application received (done)", "Under review (done)", "*Declined (failed)"],
            id="after it: declined",
        ),
        pytest.param(
            ("applied", "withdrawn"),
            ["Application received (done)", "Under review (not_reached)", "*Withdrawn (failed)"],
            id="withdrawn before the branch: a way out, no decision to show",
        ),
    ],
)
def test_the_loan_shows_the_decision_neutrally_until_it_is_made(states, expected):
    assert bar(LOAN, *states) == expected


def test_approved_is_never_presented_as_the_next_step_while_undecided():
    for states in [("applied",), ("applied", "under_review"), ("applied", "under_review", "documents_needed")]:
        page = page_after(document_validate(LOAN), *states)

        assert "Approved" not in [step.label for step in page.steps if not step.branch]
        assert page.steps[-1].branch == "decision"
        assert page.steps[-1].options == ("Approved", "Declined")
        assert page.headline != "Approved"


@pytest.mark.parametrize("named_milestones", [True, False], ids=["milestones", "default milestones"])
@pytest.mark.parametrize(
    ("states", "expected_named", "expected_default"),
    [
        pytest.param(
            ("applied", "checking"),
            ["Received (done)", "*In review (current)", "<decision>: Approved | Declined (upcoming)"],
            [
                "Application received (done)",
                "*Checking (current)",
                "Scoring (upcoming)",
                "<decision>: Approved | Declined (upcoming)",
            ],
            id="at the branch: the step after it and the outcome are one neutral step",
        ),
        pytest.param(
            ("applied", "checking", "approved"),
            ["Received (done)", "In review (done)", "*Approved (current)", "Money paid out (upcoming)"],
            [
                "Application received (done)",
                "Checking (done)",
                "Scoring (done)",
                "*Approved (current)",
                "Money paid out (upcoming)",
            ],
            id="approved: the branch taken, its steps named again",
        ),
        pytest.param(
            ("applied", "checking", "scoring", "declined"),
            ["Received (done)", "In review (done)", "*Declined (failed)"],
            ["Application received (done)", "Checking (done)", "Scoring (done)", "*Declined (failed)"],
            id="declined: the other branch's steps are not shown as missed",
        ),
    ],
)
def test_a_step_after_the_decision_belongs_to_its_branch(named_milestones, states, expected_named, expected_default):
    document = LOAN_PAID_OUT if named_milestones else {**LOAN_PAID_OUT, "milestones": []}

    assert bar(document, *states) == (expected_named if named_milestones else expected_default)


def test_a_branch_between_two_successes_is_a_neutral_outcome():
    assert bar(DELIVERY, "ordered", "shipped") == [
        "Ordered (done)",
        "*Shipped (current)",
        "<outcome>: Delivered | Collected at the shop (upcoming)",
    ]
    assert bar(DELIVERY, "ordered", "shipped", "collected") == [
        "Ordered (done)",
        "Shipped (done)",
        "*Collected at the shop (done)",
    ]


def test_steps_on_some_paths_only_are_one_neutral_step_until_the_path_is_known():
    assert bar(ROUTES, "received") == [
        "*Received (current)",
        "<route>: Quick fix | Sent to the workshop (upcoming)",
        "Tested (upcoming)",
        "Returned to you (upcoming)",
    ]
    # The quick way: the workshop's steps were never on its path, so they are not ticked as passed.
    assert bar(ROUTES, "received", "quick_fix", "tested") == [
        "Received (done)",
        "Quick fix (done)",
        "*Tested (current)",
        "Returned to you (upcoming)",
    ]
    assert bar(ROUTES, "received", "sent_to_workshop") == [
        "Received (done)",
        "*Sent to the workshop (current)",
        "Workshop repair (upcoming)",
        "Tested (upcoming)",
        "Returned to you (upcoming)",
    ]


# --- models that do not branch keep their bar ----------------------------------------------------


@pytest.mark.parametrize("name", ["order-fulfilment.yaml", "parcel-delivery.yaml"])
def test_the_example_models_have_no_neutral_step_anywhere(name):
    document = document_validate(example(name))
    plan = BranchPlan.from_document(document)
    steps = [g["label"] for g in milestone_groups(document)]
    success = next(s["label"] for s in document["states"] if s["kind"] == "success")

    for state in document["states"]:
        if state["kind"] in ("success", "failure"):
            continue
        page = page_after(document, document["initial_state"], state["key"], plan=plan)
        assert [step.label for step in page.steps] == [*steps, success], state["key"]
        assert not any(step.branch for step in page.steps)


def test_a_cancellation_that_can_come_at_any_step_is_not_a_branch():
    order = document_validate(example("order-fulfilment.yaml"))
    parcel = document_validate(example("parcel-delivery.yaml"))

    assert BranchPlan.from_document(order).decision_failures == frozenset()
    assert BranchPlan.from_document(parcel).decision_failures == frozenset()
    assert BranchPlan.from_document(document_validate(LOAN)).decision_failures == {"declined"}


def test_a_skipped_step_is_not_a_branch():
    # Parcel scans can jump ahead (from "*"): the steps in between are ahead on the way, not alternatives.
    plan = BranchPlan.from_document(document_validate(example("parcel-delivery.yaml")))

    assert plan.seen_from("announced") == {
        "announced": CERTAIN,
        "in_transit": CERTAIN,
        "out_for_delivery": CERTAIN,
        "outcome:delivered": CERTAIN,
    }


def test_what_each_state_sees_ahead_is_worked_out_once_per_plan():
    plan = BranchPlan.from_document(document_validate(LOAN))

    first = plan.seen_from("under_review")

    assert first == {"applied": AWAY, "under_review": CERTAIN, "outcome:approved": BRANCH}
    assert plan.seen_from("under_review") is first
