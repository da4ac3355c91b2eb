"""A model's dashboard from the database: worked out in the background, read from the shared cache.

On PostgreSQL one statement computes every figure set-based: the cohort of instances, their
history rows paired with the next row by window functions (``LEAD`` over each instance's rows in
applied order), and the aggregates of ``tracking.insights.figures`` over them (``percentile_cont``
for medians and 90th percentiles). On SQLite, which has no percentile aggregate, the same rows
are read in order and ``figures.tally_history`` works them out; tests run both on one history and
compare them with figures known in advance (tests/tracking/insights/).

Working them out takes seconds at a million instances, so a page view never does: a Celery beat
task (``tracking.insights.tasks``) works out every standard scope of every model (each window, every
version and each one) and stores it in the shared cache; the page reads only what is stored
(``stored_dashboard``), and asks for a scope that has nothing stored yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from models_registry.definition import parse_iso_duration
from models_registry.models import ModelVersion, StatusModel
from tracking.insights.event_log import LogCase, LogEvent, write_event_log
from tracking.insights.figures import (
    CohortInstance,
    Dashboard,
    ModelFacts,
    Spread,
    Tallies,
    dashboard_from_tallies,
    model_facts,
    tally_history,
)
from tracking.models import InstanceStatus, ProcessInstance, TransitionRecord

WINDOWS = (7, 30, 90, 365)  # days; None is all time
DEFAULT_WINDOW = 30
CACHE_VERSION = 2
REFRESH_ENTRY = "refresh-dashboards"  # in CELERY_BEAT_SCHEDULE
LOAD_SHARE = 10  # a scope is recomputed at most every this many times its last recompute took
EXPORT_CHUNK = 5000
POSTGRES_WORK_MEM = "128MB"


@dataclass(frozen=True)
class DashboardScope:
    """Which instances the figures cover: a model, one version or all, started since a time."""

    model_id: int
    model_key: str
    version_id: int | None
    version_number: int | None
    window_days: int | None
    since: datetime | None
    now: datetime


def dashboard_scope(
    *, model_key: str, version: int | None, window_days: int | None, now: datetime | None = None
) -> DashboardScope | None:
    """The scope of a dashboard, or None when the model or the version does not exist."""
    model = StatusModel.objects.filter(key=model_key).values_list("pk", flat=True).first()
    if model is None:
        return None
    version_id = None
    if version is not None:
        version_id = ModelVersion.objects.filter(model_id=model, number=version).values_list("pk", flat=True).first()
        if version_id is None:
            return None
    now = now or timezone.now()
    return DashboardScope(
        model_id=model,
        model_key=model_key,
        version_id=version_id,
        version_number=version,
        window_days=window_days,
        since=now - timedelta(days=window_days) if window_days else None,
        now=now,
    )


def _expected_seconds(value: str) -> float:
    return parse_iso_duration(value).total_seconds()


def _facts(scope: DashboardScope) -> tuple[ModelFacts, str]:
    """The model's facts, and its name (the reference version's: the chosen one, else the latest)."""
    versions = ModelVersion.objects.filter(model_id=scope.model_id).order_by("-number")
    if scope.version_id is not None:
        versions = versions.filter(pk=scope.version_id)
    documents = list(versions.values_list("pk", "document"))
    if not documents:
        return ModelFacts(states=(), milestones=(), expected={}, reference_expected={}), scope.model_key
    reference = documents[0][1]
    return (
        model_facts(reference=reference, others=documents, expected_seconds=_expected_seconds),
        reference.get("name") or scope.model_key,
    )


def _cohort(scope: DashboardScope):
    instances = ProcessInstance.objects.filter(model_id=scope.model_id, version__isnull=False).exclude(
        status=InstanceStatus.WAITING
    )
    if scope.version_id is not None:
        instances = instances.filter(version_id=scope.version_id)
    if scope.since is not None:
        instances = instances.filter(started_at__gte=scope.since)
    return instances


def _python_tallies(scope: DashboardScope, facts: ModelFacts) -> Tallies:
    cohort = _cohort(scope)
    instances = (
        CohortInstance(*row)
        for row in cohort.values_list("id", "version_id", "state", "status", "started_at", "state_entered_at").iterator(
            chunk_size=5000
        )
    )
    steps = (
        TransitionRecord.objects.filter(instance__in=cohort.values("id"))
        .order_by("instance_id", "id")
        .values_list("instance_id", "to_state", "occurred_at")
        .iterator(chunk_size=5000)
    )
    return tally_history(
        cohort=list(instances), steps=steps, facts=facts, now=scope.now, zone=ZoneInfo(settings.TIME_ZONE)
    )


# The cohort's history in one pass; every figure is an aggregate over it (a materialized CTE is
# computed once and read by each branch of the UNION).
_POSTGRES_FIGURES = """
WITH cohort AS MATERIALIZED (
    SELECT id, version_id, state, status, started_at, state_entered_at
    FROM tracking_processinstance
    WHERE model_id = %(model)s AND status <> 'waiting' AND version_id IS NOT NULL {cohort_filters}
),
steps AS MATERIALIZED (
    SELECT c.id AS instance_id, c.version_id, c.status, t.to_state AS state, t.occurred_at AS entered_at,
           LEAD(t.occurred_at) OVER applied AS left_at,
           LEAD(t.to_state) OVER applied AS next_state,
           ROW_NUMBER() OVER applied = 1 AS first
    -- Each instance's rows through the index on instance_id. OFFSET 0 keeps the planner from
    -- turning this into a join that walks the whole history table's index (it expects many
    -- more rows per instance than there are).
    FROM cohort c CROSS JOIN LATERAL (
        SELECT id, to_state, occurred_at FROM tracking_transitionrecord WHERE instance_id = c.id OFFSET 0
    ) t
    WINDOW applied AS (PARTITION BY c.id ORDER BY t.id)
),
expected AS (
    SELECT * FROM unnest(%(expected_versions)s::bigint[], %(expected_states)s::text[],
                         %(expected_seconds)s::float8[]) AS e(version_id, state, seconds)
){milestone_cte}
SELECT 'now', state, NULL, count(*), NULL::float8, NULL::float8 FROM cohort GROUP BY state
UNION ALL
SELECT 'status', status, NULL, count(*), NULL, NULL FROM cohort GROUP BY status
UNION ALL
SELECT 'started', to_char((started_at AT TIME ZONE %(zone)s)::date, 'YYYY-MM-DD'), NULL, count(*), NULL, NULL
FROM cohort GROUP BY 2
UNION ALL
SELECT 'finished', to_char((state_entered_at AT TIME ZONE %(zone)s)::date, 'YYYY-MM-DD'), status, count(*), NULL, NULL
FROM cohort WHERE status IN ('succeeded', 'failed') AND state_entered_at IS NOT NULL GROUP BY 2, 3
UNION ALL
SELECT 'dwell', state, NULL, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
FROM (SELECT state COLLATE "C" AS state, GREATEST(0, EXTRACT(EPOCH FROM left_at - entered_at))::float8 AS seconds
      FROM steps WHERE left_at IS NOT NULL) AS finished_visits
GROUP BY state
UNION ALL
SELECT 'past', s.state, NULL, count(*),
       count(*) FILTER (WHERE EXTRACT(EPOCH FROM COALESCE(s.left_at, %(now)s) - s.entered_at) > e.seconds), NULL
FROM steps s JOIN expected e ON e.version_id = s.version_id AND e.state = s.state
GROUP BY s.state
UNION ALL
SELECT 'follows', state, next_state, count(*), NULL, NULL FROM steps WHERE next_state IS NOT NULL GROUP BY 2, 3
UNION ALL
SELECT 'start', state, NULL, count(*), NULL, NULL FROM steps WHERE first GROUP BY state
UNION ALL
SELECT 'end', state, NULL, count(*), NULL, NULL FROM steps WHERE next_state IS NULL GROUP BY state
{milestone_spans}
"""

_MILESTONE_CTE = """,
reached AS MATERIALIZED (
    SELECT {columns} FROM steps WHERE state = ANY(%(milestone_states)s) GROUP BY instance_id
)"""

_MILESTONE_SPAN = """
UNION ALL
SELECT 'span', '{index}', NULL, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
FROM (SELECT GREATEST(0, EXTRACT(EPOCH FROM m{next} - m{index}))::float8 AS seconds
      FROM reached WHERE m{index} IS NOT NULL AND m{next} IS NOT NULL) AS span{index}"""


def _postgres_statement(scope: DashboardScope, facts: ModelFacts) -> tuple[str, dict]:
    params: dict = {
        "model": scope.model_id,
        "zone": settings.TIME_ZONE,
        "now": scope.now,
        "expected_versions": [version for version, _ in facts.expected],
        "expected_states": [state for _, state in facts.expected],
        "expected_seconds": list(facts.expected.values()),
    }
    filters = ""
    if scope.version_id is not None:
        filters += " AND version_id = %(version)s"
        params["version"] = scope.version_id
    if scope.since is not None:
        filters += " AND started_at >= %(since)s"
        params["since"] = scope.since
    milestone_cte = milestone_spans = ""
    if len(facts.milestones) > 1:
        columns = ["instance_id"]
        for i, group in enumerate(facts.milestones):
            params[f"milestone_{i}"] = list(group["states"])
            columns.append(f"MIN(entered_at) FILTER (WHERE state = ANY(%(milestone_{i})s)) AS m{i}")
        params["milestone_states"] = [state for group in facts.milestones for state in group["states"]]
        milestone_cte = _MILESTONE_CTE.format(columns=", ".join(columns))
        milestone_spans = "".join(_MILESTONE_SPAN.format(index=i, next=i + 1) for i in range(len(facts.milestones) - 1))
    sql = _POSTGRES_FIGURES.format(cohort_filters=filters, milestone_cte=milestone_cte, milestone_spans=milestone_spans)
    return sql, params


def _postgres_tallies(scope: DashboardScope, facts: ModelFacts) -> Tallies:
    sql, params = _postgres_statement(scope, facts)
    tallies = Tallies()
    with transaction.atomic(), connection.cursor() as cursor:
        # Compiling this statement with JIT takes longer than running it; its sorts fit in memory.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for figure, a, b, count, first, second in rows:
        if figure == "now":
            tallies.now[a] = count
        elif figure == "status":
            tallies.statuses[a] = count
        elif figure == "started":
            tallies.started[datetime.strptime(a, "%Y-%m-%d").date()] = count  # noqa: DTZ007 (a date)
        elif figure == "finished":
            tallies.finished[(datetime.strptime(a, "%Y-%m-%d").date(), b)] = count  # noqa: DTZ007
        elif figure == "dwell":
            tallies.dwell[a] = Spread(count, first, second)
        elif figure == "past":
            tallies.visits[a] = count
            tallies.past_expected[a] = int(first)
        elif figure == "follows":
            tallies.follows[(a, b)] = count
        elif figure == "start":
            tallies.starts[a] = count
        elif figure == "end":
            tallies.ends[a] = count
        elif figure == "span" and count:
            tallies.spans[int(a)] = Spread(count, first, second)
    return tallies


def dashboard_compute(scope: DashboardScope) -> Dashboard:
    """The figures, worked out now (no cache)."""
    facts, name = _facts(scope)
    if connection.vendor == "postgresql":
        tallies = _postgres_tallies(scope, facts)
    else:
        tallies = _python_tallies(scope, facts)
    return dashboard_from_tallies(
        tallies,
        facts=facts,
        model_key=scope.model_key,
        model_name=name,
        version=scope.version_number,
        window_days=scope.window_days,
        since=scope.since,
        now=scope.now,
        zone=ZoneInfo(settings.TIME_ZONE),
    )


def cache_key(scope: DashboardScope, kind: str = "figures") -> str:
    return f"insights:{kind}:{CACHE_VERSION}:{scope.model_id}:{scope.version_id or 'all'}:{scope.window_days or 'all'}"


def stored_dashboard(scope: DashboardScope) -> Dashboard | None:
    """The figures of a scope as the last recompute stored them (one cache read), or None."""
    return cache.get(cache_key(scope))


def dashboard_queued_at(scope: DashboardScope) -> datetime | None:
    """When a recompute of the scope was queued, while it is queued or running."""
    return cache.get(cache_key(scope, "queued"))


def refresh_interval() -> timedelta:
    """How often the beat task recomputes every dashboard (CELERY_BEAT_SCHEDULE)."""
    entry = settings.CELERY_BEAT_SCHEDULE.get(REFRESH_ENTRY)
    return entry["schedule"] if entry else timedelta(minutes=5)


def refresh_every(dashboard: Dashboard) -> timedelta:
    """How often a scope is recomputed: at every beat tick, or at every few ticks when its last
    recompute took more than a tenth of the interval, so that no scope keeps the database busy more
    than about a tenth of the time (a year of a million instances takes about a minute)."""
    interval = refresh_interval()
    wanted = max(interval, timedelta(seconds=LOAD_SHARE * (dashboard.computed_in or 0)))
    return interval * math.ceil((wanted - interval / 2) / interval)


def dashboard_due(dashboard: Dashboard | None, *, now: datetime) -> bool:
    """Whether the beat tick at ``now`` recomputes a scope whose stored figures are these."""
    if dashboard is None:
        return True
    return now - dashboard.computed_at >= refresh_every(dashboard) - refresh_interval() / 2


def model_title(scope: DashboardScope) -> str:
    """The model's name in its latest version (the page's title while its figures are computed)."""
    document = ModelVersion.objects.filter(model_id=scope.model_id).order_by("-number").values("document").first()
    return ((document or {}).get("document") or {}).get("name") or scope.model_key


def standard_scopes(*, now: datetime | None = None) -> Iterator[DashboardScope]:
    """Every scope the page offers, of every model with a published version: each window (and all
    time) for every version together, and for each version when there are several (with one, its
    figures are those of every version: ``services.dashboard_refresh`` stores them for both)."""
    now = now or timezone.now()
    numbers: dict[str, list[int]] = {}
    for key, number in ModelVersion.objects.order_by("model__key", "number").values_list("model__key", "number"):
        numbers.setdefault(key, []).append(number)
    for key, versions in numbers.items():
        for version in [None, *versions] if len(versions) > 1 else [None]:
            for window in (*WINDOWS, None):
                scope = dashboard_scope(model_key=key, version=version, window_days=window, now=now)
                if scope is not None:
                    yield scope


# --- The event log ----------------------------------------------------------------------------------


def event_log_labels(scope: DashboardScope) -> dict[str, str]:
    """Every state the scope's versions know, with its label: the activities of the event log."""
    facts, _ = _facts(scope)
    return {state["key"]: state["label"] for state in facts.states}


def event_log_cases(scope: DashboardScope) -> Iterator[LogCase]:
    rows = (
        _cohort(scope)
        .order_by("id")
        .values_list("transaction_id", "state", "status", "version__number", "started_at")
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    return (LogCase(*row) for row in rows)


def event_log_events(scope: DashboardScope) -> Iterator[LogEvent]:
    """The scope's history rows, case by case (the order of the instances' ids) and applied order within one."""
    rows = (
        TransitionRecord.objects.filter(instance__in=_cohort(scope).values("id"))
        .order_by("instance_id", "id")
        .values_list(
            "id",
            "instance__transaction_id",
            "from_state",
            "to_state",
            "occurred_at",
            "event__event_type",
            "event__event_id",
            "instance__version__number",
            "actor__username",
            "note",
        )
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    return (LogEvent(*row) for row in rows)


def event_log_chunks(scope: DashboardScope, format: str) -> Iterator[str]:
    """The scope's event log in ``format`` (``event_log.FORMATS``), as chunks of text to stream."""
    return write_event_log(
        format,
        cases=event_log_cases(scope),
        events=event_log_events(scope),
        model_key=scope.model_key,
        labels=event_log_labels(scope),
    )
