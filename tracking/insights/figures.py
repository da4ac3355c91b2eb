"""A model's dashboard figures: what each one means, and how it is worked out from history rows.

Pure Python (no ORM). The figures cover a **cohort**: the started instances of the model (of one
version, or all) whose start falls in the time window. Over that cohort:

- instances by state now, and by outcome (conversion to success and failure, or still open);
- throughput per day: instances started, and instances that reached success or failure (the time
  they entered their outcome state), each day;
- dwell: how long a visit to a state lasted, from the transition into it to the next one (the
  chain of the instance's history in the order it was applied), as median and 90th percentile
  (linear interpolation, PostgreSQL's ``percentile_cont``); visits still going are not finished
  dwells and are left out of these, but they do count for ``expected_within``;
- the share of visits to a state with an ``expected_within`` that lasted (or, still going, have
  lasted until now) longer than it;
- between milestones: from first reaching one milestone to first reaching the next, for the
  instances that reached both;
- the paths taken: the directly-follows graph, how often a state was followed directly by another,
  with how often each state started and ended a case (pm4py's ``discover_dfg`` on the exported
  event log says the same: tests/tracking/insights/test_event_log.py).

A time the source system dated before the previous one counts as zero, not as negative time.

``tally_history`` is the reference computation and the SQLite path; on PostgreSQL one SQL
statement computes the same ``Tallies`` (``tracking.insights.selectors``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from tracking.progress.customer_page import percentile
from tracking.progress.milestones import milestone_groups

MEDIAN, P90 = 0.5, 0.9
OPEN_STATUSES = ("active", "in_exception")
OUTCOME_STATUSES = ("succeeded", "failed")


@dataclass(frozen=True)
class Spread:
    """Durations in seconds: how many, their median and 90th percentile (None when there are none)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls()
        values.sort()
        return cls(len(values), percentile(values, MEDIAN), percentile(values, P90))


@dataclass
class Tallies:
    """The raw figures of a cohort, as both backends compute them (keys are state keys, days dates)."""

    now: Counter = field(default_factory=Counter)  # state -> instances in it now
    statuses: Counter = field(default_factory=Counter)  # status -> instances
    started: Counter = field(default_factory=Counter)  # day -> instances started
    finished: Counter = field(default_factory=Counter)  # (day, status) -> instances that ended so
    dwell: dict[str, Spread] = field(default_factory=dict)  # state -> finished visits' durations
    visits: Counter = field(default_factory=Counter)  # state -> visits, for states with expected_within
    past_expected: Counter = field(default_factory=Counter)  # state -> of those, longer than it
    follows: Counter = field(default_factory=Counter)  # (state, next state) -> times
    starts: Counter = field(default_factory=Counter)  # state -> cases it started
    ends: Counter = field(default_factory=Counter)  # state -> cases it ends (so far)
    spans: dict[int, Spread] = field(default_factory=dict)  # i -> milestone i to milestone i + 1


@dataclass(frozen=True)
class CohortInstance:
    id: int
    version_id: int
    state: str
    status: str
    started_at: datetime
    state_entered_at: datetime | None = None


@dataclass(frozen=True)
class ModelFacts:
    """What the figures need of the model's definitions."""

    states: tuple[dict, ...]  # {key, label, kind}, the reference version's first, then others'
    milestones: tuple[dict, ...]  # the reference version's, {key, label, states}
    expected: Mapping[tuple[int, str], float]  # (version id, state) -> expected_within in seconds
    reference_expected: Mapping[str, float]  # state -> the reference version's expected_within
    initial_state: str = ""


def day_of(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def tally_history(
    *,
    cohort: Iterable[CohortInstance],
    steps: Iterable[tuple[int, str, datetime]],
    facts: ModelFacts,
    now: datetime,
    zone: tzinfo,
) -> Tallies:
    """The tallies of a cohort from its history rows: (instance id, to_state, occurred_at), grouped
    by instance and in the order they were applied within one."""
    tallies = Tallies()
    instances = {}
    for instance in cohort:
        instances[instance.id] = instance
        tallies.now[instance.state] += 1
        tallies.statuses[instance.status] += 1
        tallies.started[day_of(instance.started_at, zone)] += 1
        if instance.status in OUTCOME_STATUSES and instance.state_entered_at is not None:
            tallies.finished[(day_of(instance.state_entered_at, zone), instance.status)] += 1
    milestone_of = {state: i for i, group in enumerate(facts.milestones) for state in group["states"]}
    dwell: dict[str, list[float]] = defaultdict(list)
    spans: dict[int, list[float]] = defaultdict(list)

    def close(instance_id: int, history: list[tuple[str, datetime]]) -> None:
        instance = instances[instance_id]
        reached: dict[int, datetime] = {}
        for position, (state, entered_at) in enumerate(history):
            later = history[position + 1] if position + 1 < len(history) else None
            if position == 0:
                tallies.starts[state] += 1
            if later is None:
                tallies.ends[state] += 1
            else:
                tallies.follows[(state, later[0])] += 1
                dwell[state].append(_seconds(later[1], entered_at))
            expected = facts.expected.get((instance.version_id, state))
            if expected is not None:
                tallies.visits[state] += 1
                if ((later[1] if later else now) - entered_at).total_seconds() > expected:
                    tallies.past_expected[state] += 1
            milestone = milestone_of.get(state)
            if milestone is not None and (milestone not in reached or entered_at < reached[milestone]):
                reached[milestone] = entered_at
        for i in range(len(facts.milestones) - 1):
            if i in reached and i + 1 in reached:
                spans[i].append(_seconds(reached[i + 1], reached[i]))

    current, history = None, []
    for instance_id, state, occurred_at in steps:
        if instance_id != current:
            if history:
                close(current, history)
            current, history = instance_id, []
        history.append((state, occurred_at))
    if history:
        close(current, history)
    tallies.dwell = {state: Spread.of(values) for state, values in dwell.items()}
    tallies.spans = {i: Spread.of(values) for i, values in spans.items()}
    return tallies


# --- What the page shows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StateFigures:
    key: str
    label: str
    kind: str
    now: int
    dwell: Spread
    expected_within: float | None  # seconds, the reference version's
    visits: int  # visits judged against expected_within
    past_expected: int

    @property
    def past_expected_share(self) -> float | None:
        return self.past_expected / self.visits if self.visits else None


@dataclass(frozen=True)
class MilestoneSpan:
    from_label: str
    to_label: str
    spread: Spread


@dataclass(frozen=True)
class DayFigures:
    day: date
    started: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Dashboard:
    model_key: str
    model_name: str
    version: int | None  # None: every version
    window_days: int | None  # None: all time
    since: datetime | None
    computed_at: datetime
    instances: int
    statuses: Mapping[str, int]
    states: tuple[StateFigures, ...]
    milestones: tuple[MilestoneSpan, ...]
    days: tuple[DayFigures, ...]
    follows: Mapping[tuple[str, str], int]
    starts: Mapping[str, int]
    ends: Mapping[str, int]
    initial_state: str = ""
    computed_in: float | None = None  # seconds the background recompute took

    def share(self, status: str) -> float | None:
        return self.statuses.get(status, 0) / self.instances if self.instances else None

    @property
    def open_instances(self) -> int:
        return sum(self.statuses.get(status, 0) for status in OPEN_STATUSES)


def _days(tallies: Tallies, first: date | None, last: date) -> tuple[DayFigures, ...]:
    seen = set(tallies.started) | {day for day, _ in tallies.finished}
    if first is None:
        if not seen:
            return ()
        first = min(seen)
    last = max([last, *seen])
    days = []
    day = first
    while day <= last:
        days.append(
            DayFigures(
                day=day,
                started=tallies.started.get(day, 0),
                succeeded=tallies.finished.get((day, "succeeded"), 0),
                failed=tallies.finished.get((day, "failed"), 0),
            )
        )
        day += timedelta(days=1)
    return tuple(days)


def dashboard_from_tallies(
    tallies: Tallies,
    *,
    facts: ModelFacts,
    model_key: str,
    model_name: str,
    version: int | None,
    window_days: int | None,
    since: datetime | None,
    now: datetime,
    zone: tzinfo,
) -> Dashboard:
    known = {state["key"] for state in facts.states}
    seen = set(tallies.now) | set(tallies.starts) | {state for pair in tallies.follows for state in pair}
    # States only the history knows of (of another version, moved away from) still get a row.
    states = [*facts.states, *({"key": key, "label": key, "kind": "step"} for key in sorted(seen - known))]
    return Dashboard(
        model_key=model_key,
        model_name=model_name,
        version=version,
        window_days=window_days,
        since=since,
        computed_at=now,
        instances=sum(tallies.statuses.values()),
        statuses=dict(tallies.statuses),
        states=tuple(
            StateFigures(
                key=state["key"],
                label=state["label"],
                kind=state["kind"],
                now=tallies.now.get(state["key"], 0),
                dwell=tallies.dwell.get(state["key"], Spread()),
                expected_within=facts.reference_expected.get(state["key"]),
                visits=tallies.visits.get(state["key"], 0),
                past_expected=tallies.past_expected.get(state["key"], 0),
            )
            for state in states
        ),
        milestones=tuple(
            MilestoneSpan(group["label"], facts.milestones[i + 1]["label"], tallies.spans.get(i, Spread()))
            for i, group in enumerate(facts.milestones[:-1])
        ),
        days=_days(tallies, day_of(since, zone) if since else None, day_of(now, zone)),
        follows=dict(tallies.follows),
        starts=dict(tallies.starts),
        ends=dict(tallies.ends),
        initial_state=facts.initial_state,
    )


def model_facts(*, reference: Mapping, others: Sequence[tuple[int, Mapping]], expected_seconds) -> ModelFacts:
    """The facts of a model from its reference document and every (version id, document) counted.

    ``expected_seconds`` turns an ``expected_within`` (ISO 8601) into seconds.
    """
    states = []
    seen = set()
    for document in (reference, *(document for _, document in others)):
        for state in document["states"]:
            if state["key"] not in seen:
                seen.add(state["key"])
                states.append({"key": state["key"], "label": state["label"], "kind": state.get("kind", "step")})
    expected = {
        (version_id, state["key"]): expected_seconds(state["expected_within"])
        for version_id, document in others
        for state in document["states"]
        if state.get("expected_within")
    }
    return ModelFacts(
        states=tuple(states),
        milestones=tuple(
            {"key": g["key"], "label": g["label"], "states": tuple(g["states"])} for g in milestone_groups(reference)
        ),
        expected=expected,
        reference_expected={
            state["key"]: expected_seconds(state["expected_within"])
            for state in reference["states"]
            if state.get("expected_within")
        },
        initial_state=reference.get("initial_state", ""),
    )
