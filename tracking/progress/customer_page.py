"""What the customer page shows for one instance, and the completion statistics behind its estimate.

Pure Python, no ORM: ``tracking.progress.selectors`` reads the rows (in a fixed number of queries) and
this module turns them into what the page needs, so that the rules — which step is current,
where an exception's banner goes, when a step is late, which date range to promise — can be read
and tested on their own. Text that the service itself writes (not the model's labels) lives in
the templates, where it is translated.

The milestone bar is the one the REST API shows (``tracking.progress.milestones``), with the outcome added
as the last step: the first success state that no milestone holds is what an instance is heading
for, and a failure replaces it when that is how the instance ended.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from models_registry.definition import parse_iso_duration
from tracking.progress.milestones import (
    AWAY,
    BRANCH,
    CERTAIN,
    CURRENT,
    REACHED,
    TERMINAL_KINDS,
    BranchPlan,
    instance_milestones,
    milestone_groups,
    outcome_element,
)
from tracking.progress.milestones import UPCOMING as UPCOMING_MILESTONE

DONE, UPCOMING, FAILED, NOT_REACHED = "done", "upcoming", "failed", "not_reached"
ACTIVE, SUCCEEDED, FAILURE, IN_EXCEPTION = "active", "succeeded", "failed", "in_exception"

# The estimate's range: 80% of the completed instances took between these two percentiles.
LOW_PERCENTILE, MEDIAN, HIGH_PERCENTILE = 0.10, 0.50, 0.90


@dataclass(frozen=True)
class HistoryRow:
    to_state: str
    occurred_at: datetime


@dataclass(frozen=True)
class PageStep:
    key: str
    label: str
    description: str
    status: str  # done, current, upcoming, failed, not_reached
    reached_at: datetime | None
    outcome: str = ""  # "success" or "failure" on the outcome step
    is_current: bool = False
    # A neutral step where the path ahead branches: "decision" when one way ends in failure,
    # "outcome" when every way is a success, "route" otherwise; ``options`` names the ways.
    branch: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class MilestoneStats:
    """Seconds from reaching a milestone to completion, over the completed instances sampled."""

    count: int
    low: float
    median: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """``range``: earliest/likely/latest dates; ``late``: the range has passed; ``unknown``: too few."""

    kind: str
    completed: int
    minimum: int
    earliest: datetime | None = None
    likely: datetime | None = None
    latest: datetime | None = None

    @property
    def spans_days(self) -> bool:
        """Whole days are precise enough for a wide range; a narrow one shows times."""
        return bool(self.earliest and self.latest and self.latest - self.earliest >= timedelta(days=1))

    @property
    def is_one_time(self) -> bool:
        """A range within a minute would read "between 1:26 and 1:26": the page shows one time."""
        return bool(self.earliest and self.latest and self.latest - self.earliest < timedelta(minutes=1))


@dataclass(frozen=True)
class CustomerPage:
    model_name: str
    model_description: str
    status: str  # active, succeeded, failed, in_exception
    headline: str
    detail: str
    steps: list[PageStep]
    position: int  # 1-based index of the step the instance is at
    exception: tuple[str, str] | None  # (label, description) of the exception state
    display: list[tuple[str, str]]
    updated_at: datetime
    state_since: datetime | None
    expected_by: datetime | None
    delayed: bool
    estimate: Estimate | None

    @property
    def finished(self) -> bool:
        return self.status in (SUCCEEDED, FAILURE)

    @property
    def current_step(self) -> PageStep:
        return self.steps[self.position - 1]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont, numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = fraction * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def completion_stats(
    document: Mapping[str, Any], rows: Iterable[tuple[int, str, datetime]]
) -> dict[str, MilestoneStats]:
    """Per milestone: how long completed instances took from first reaching it to completion.

    ``rows`` are (instance id, to_state, occurred_at) transition records of completed instances,
    grouped by instance and oldest first within one. Completion is the last arrival in a success
    state; instances whose records do not show one are left out, and so are milestones reached
    only after it (a manual move after completion).
    """
    kinds = {state["key"]: state.get("kind", "step") for state in document["states"]}
    groups = milestone_groups(document)
    group_of = {state: group["key"] for group in groups for state in group["states"]}
    durations: dict[str, list[float]] = {group["key"]: [] for group in groups}

    def finish(reached: dict[str, datetime], completed_at: datetime | None) -> None:
        if completed_at is None:
            return
        for key, at in reached.items():
            if at <= completed_at:
                durations[key].append((completed_at - at).total_seconds())

    current_instance = None
    reached: dict[str, datetime] = {}
    completed_at: datetime | None = None
    for instance_id, to_state, occurred_at in rows:
        if instance_id != current_instance:
            finish(reached, completed_at)
            current_instance, reached, completed_at = instance_id, {}, None
        key = group_of.get(to_state)
        if key is not None and (key not in reached or occurred_at < reached[key]):
            reached[key] = occurred_at
        if kinds.get(to_state) == "success":
            completed_at = occurred_at
    finish(reached, completed_at)

    stats = {}
    for key, values in durations.items():
        if values:
            values.sort()
            stats[key] = MilestoneStats(
                count=len(values),
                low=percentile(values, LOW_PERCENTILE),
                median=percentile(values, MEDIAN),
                high=percentile(values, HIGH_PERCENTILE),
            )
    return stats


def _display_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _outcome_state(document: Mapping[str, Any], state: str, grouped: set[str], seen: Mapping[str, str]) -> dict | None:
    """The terminal state shown as the bar's last step, or None when the milestones end the bar.

    An instance that ended shows its own outcome (unless a milestone holds it); one still going
    shows the first success state it can still reach (the first of all when it can reach none),
    unless the model's milestones hold a success state already.
    """
    states = document["states"]
    current = next((s for s in states if s["key"] == state), None)
    if current is not None and current.get("kind") in ("success", "failure"):
        return None if state in grouped else current
    successes = [s for s in states if s.get("kind") == "success"]
    if any(s["key"] in grouped for s in successes):
        return None
    ahead = [s for s in successes if seen.get(outcome_element(s["key"]), CERTAIN) != AWAY]
    return (ahead or successes or [None])[0]


def _fold_branches(entries: Sequence[PageStep | str], plan: BranchPlan, origin: str) -> list[PageStep]:
    """Steps as they are, and each run of elements that lie on one branch only as one neutral step."""
    steps: list[PageStep] = []
    run: list[str] = []
    labels = {state["key"]: state["label"] for state in plan.document["states"]}

    def close_run() -> None:
        if not run:
            return
        options = plan.options(origin, run)
        kinds = {plan.kinds[option] for option in options}
        branch = "decision" if "failure" in kinds else "outcome" if kinds == {"success"} else "route"
        steps.append(
            PageStep(
                key=f"branch:{run[0]}",
                label=" / ".join(labels[option] for option in options),
                description="",
                status=UPCOMING,
                reached_at=None,
                branch=branch,
                options=tuple(labels[option] for option in options),
            )
        )
        run.clear()

    for entry in entries:
        if isinstance(entry, str):
            run.append(entry)
        else:
            close_run()
            steps.append(entry)
    close_run()
    return steps


def build_page(
    *,
    document: Mapping[str, Any],
    state: str,
    context: Mapping[str, Any],
    history: Sequence[HistoryRow],
    updated_at: datetime,
    state_entered_at: datetime | None,
    stats: Mapping[str, MilestoneStats] | None,
    minimum_completed: int,
    now: datetime,
    plan: BranchPlan | None = None,
) -> CustomerPage:
    """Everything the page shows for an instance in ``state`` with this history (oldest first).

    ``plan`` is the model's ``BranchPlan``; callers that show many pages of one version pass the one
    made for it (``tracking.progress.selectors.version_branch_plan``), others leave it out."""
    states = {s["key"]: s for s in document["states"]}
    current_state = states.get(state, {"key": state, "label": state, "kind": "step"})
    kind = current_state.get("kind", "step")
    status = {"success": SUCCEEDED, "failure": FAILURE, "exception": IN_EXCEPTION}.get(kind, ACTIVE)

    milestones = instance_milestones(_StateOnly(state), document, history)
    grouped = {s for m in milestones for s in m["states"]}
    plan = plan or BranchPlan.from_document(document)
    visited = {row.to_state for row in history} | {state}
    # The path ahead is seen from where the instance is; an ended one from where it ended.
    origin = state
    if status == FAILURE:
        origin = next(
            (
                row.to_state
                for row in reversed(history)
                if plan.kinds.get(row.to_state, "failure") not in TERMINAL_KINDS
            ),
            document.get("initial_state", state),
        )
    seen = plan.seen_from(origin) if origin in plan.kinds else {}

    # Each entry is a step, or the name of an element of the bar that lies on one branch only.
    entries: list[PageStep | str] = []
    for milestone in milestones:
        key, states_of_milestone = milestone["key"], set(milestone["states"])
        been_there = bool(visited & states_of_milestone)
        if milestone["status"] == UPCOMING_MILESTONE:
            fate = seen.get(key, CERTAIN)
            if fate == AWAY or (fate == BRANCH and status == FAILURE):
                continue  # on a branch the instance cannot take (any more)
            if fate == BRANCH:
                entries.append(key)
                continue
        elif milestone["status"] == REACHED and not been_there and not plan.fits_path(key, visited):
            continue  # "passed" only by position, on a branch the instance did not take
        step_status = {REACHED: DONE, CURRENT: CURRENT}.get(milestone["status"], UPCOMING)
        if status == FAILURE and step_status == UPCOMING:
            step_status = NOT_REACHED
        if status == FAILURE and state in states_of_milestone:
            step_status = FAILED
        entries.append(
            PageStep(
                key=key,
                label=milestone["label"],
                description=milestone.get("description", ""),
                status=step_status,
                reached_at=milestone["reached_at"] if step_status in (DONE, CURRENT, FAILED) else None,
                is_current=milestone["status"] == CURRENT or state in states_of_milestone,
            )
        )

    last_arrival = {row.to_state: row.occurred_at for row in history}
    outcome = _outcome_state(document, state, grouped, seen)
    if outcome is not None:
        outcome_kind = outcome.get("kind")
        reached = outcome["key"] == state
        if not reached and seen.get(outcome_element(outcome["key"])) == BRANCH:
            entries.append(outcome_element(outcome["key"]))
        else:
            entries.append(
                PageStep(
                    key=outcome["key"],
                    label=outcome["label"],
                    description=outcome.get("description", ""),
                    status=(FAILED if outcome_kind == "failure" else DONE) if reached else UPCOMING,
                    reached_at=last_arrival.get(outcome["key"]) if reached else None,
                    outcome=outcome_kind,
                    is_current=reached,
                )
            )
    steps = _fold_branches(entries, plan, origin)
    position = max((i for i, step in enumerate(steps, start=1) if step.is_current), default=0)
    if not steps:
        # A model with neither step nor success states: the state itself is the only step.
        steps.append(
            PageStep(
                key=state,
                label=current_state["label"],
                description=current_state.get("description", ""),
                status=FAILED if status == FAILURE else (DONE if status == SUCCEEDED else CURRENT),
                reached_at=last_arrival.get(state),
            )
        )
    if position == 0:
        # Not in any step (an exception before the first milestone, an ended instance whose
        # outcome a milestone holds): the last step reached, or the first.
        position = max((i for i, s in enumerate(steps, start=1) if s.status in (DONE, FAILED)), default=1)
    steps = [replace(step, is_current=index == position) for index, step in enumerate(steps, start=1)]

    milestone_of = {s: m for m in milestones for s in m["states"]}
    if kind == "exception":
        headline, detail = current_state["label"], current_state.get("description", "")
    elif state in milestone_of and document.get("milestones"):
        group = milestone_of[state]
        headline, detail = group["label"], group.get("description", "")
    else:
        headline, detail = current_state["label"], current_state.get("description", "")

    display = [
        (entry["label"], _display_value(context[entry["field"]]))
        for entry in document.get("display", [])
        if context.get(entry["field"]) not in (None, "", [], {})
    ]

    since = last_arrival.get(state, state_entered_at)
    expected_by = None
    expected_within = parse_iso_duration(current_state.get("expected_within"))
    if expected_within is not None and since is not None and status in (ACTIVE, IN_EXCEPTION):
        expected_by = since + expected_within
    delayed = expected_by is not None and now > expected_by

    estimate = None
    if status == ACTIVE:
        step = steps[position - 1]
        milestone_stats = (stats or {}).get(step.key)
        count = milestone_stats.count if milestone_stats else 0
        if milestone_stats is None or count < minimum_completed or step.reached_at is None:
            estimate = Estimate(kind="unknown", completed=count, minimum=minimum_completed)
        else:
            start = step.reached_at
            latest = start + timedelta(seconds=milestone_stats.high)
            if latest < now:
                estimate = Estimate(kind="late", completed=count, minimum=minimum_completed)
            else:
                estimate = Estimate(
                    kind="range",
                    completed=count,
                    minimum=minimum_completed,
                    earliest=start + timedelta(seconds=milestone_stats.low),
                    likely=start + timedelta(seconds=milestone_stats.median),
                    latest=latest,
                )

    return CustomerPage(
        model_name=document["name"],
        model_description=document.get("description", ""),
        status=status,
        headline=headline,
        detail=detail,
        steps=steps,
        position=position,
        exception=(current_state["label"], current_state.get("description", "")) if kind == "exception" else None,
        display=display,
        updated_at=updated_at,
        state_since=since,
        expected_by=expected_by,
        delayed=delayed,
        estimate=estimate,
    )


@dataclass(frozen=True)
class _StateOnly:
    state: str
