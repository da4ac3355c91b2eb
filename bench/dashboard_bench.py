"""Benchmark: a model's dashboard at 1,000,000 instances and 10,000,000 history rows, on PostgreSQL.

Not a test: it prints figures. It builds (unless ``--skip-generate``) a separate database with one
bench model (a claim: 12 states, a loop of documents asked for and received, milestones,
``expected_within`` on four states) and ``--instances`` instances started evenly over the last
year, with their transition history, by set-based SQL (``INSERT … SELECT`` over
``generate_series``): 60 % paid after 13 transitions, 10 % rejected after 4, 30 % still open
after 1 to 12, about 10 rows per instance. Then it measures what a user and the workers see:

- the recompute: ``tracking.insights.services.dashboard_refresh``, what the ``refresh_dashboard``
  task does in a worker (background) for one scope, for each of ``--recompute-windows``;
- the page view, ``GET /admin/dashboard/<model>/`` with Django's test client (URL routing,
  middleware, the view, the template; no network), for each of ``--windows``:
  cold, the first view right after each of ``--runs`` recomputes of that scope; warm, ``--runs``
  views after that; and the page shown while nothing is stored yet ("being computed", with the
  recompute already queued, so that no task is sent to a broker nobody reads here).

``--repeat`` runs it all that many times and prints each figure's median over the runs.

With ``--index`` it first adds the index on instances by (model, start) that the figures' cohort
can use, to compare with and without it (``--drop-index`` removes it again).

    .venv/bin/python bench/dashboard_bench.py            # DATABASE_URL=postgres://postgres@127.0.0.1:5432/dashbench
    .venv/bin/python bench/dashboard_bench.py --skip-generate --repeat 3 --runs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/dashbench"
MODEL = {
    "id": "claim-bench",
    "name": "Repair claim (bench)",
    "handler": "declarative",
    "initial_state": "submitted",
    "start_events": ["claim.submitted"],
    "states": [
        {"key": "submitted", "label": "Submitted", "expected_within": "PT4H"},
        {"key": "triaged", "label": "Triaged", "expected_within": "P1D"},
        {"key": "assessed", "label": "Assessed"},
        {"key": "documents_requested", "label": "Documents requested", "kind": "exception"},
        {"key": "documents_received", "label": "Documents received"},
        {"key": "approved", "label": "Approved", "expected_within": "P2D"},
        {"key": "scheduled", "label": "Repair scheduled"},
        {"key": "repaired", "label": "Repaired", "expected_within": "P1D"},
        {"key": "invoiced", "label": "Invoiced"},
        {"key": "paid", "label": "Paid", "kind": "success"},
        {"key": "rejected", "label": "Rejected", "kind": "failure"},
    ],
    "transitions": [
        {"event": "claim.triaged", "from": ["submitted"], "to": "triaged"},
        {"event": "claim.assessed", "from": ["triaged"], "to": "assessed"},
        {"event": "documents.requested", "from": ["assessed", "documents_received"], "to": "documents_requested"},
        {"event": "documents.received", "from": ["documents_requested"], "to": "documents_received"},
        {"event": "claim.approved", "from": ["documents_received"], "to": "approved"},
        {"event": "claim.rejected", "from": ["assessed"], "to": "rejected"},
        {"event": "repair.scheduled", "from": ["approved"], "to": "scheduled"},
        {"event": "repair.done", "from": ["scheduled"], "to": "repaired"},
        {"event": "invoice.sent", "from": ["repaired"], "to": "invoiced"},
        {"event": "invoice.paid", "from": ["invoiced"], "to": "paid"},
    ],
    "milestones": [
        {"key": "in", "label": "Claim in", "states": ["submitted", "triaged"]},
        {"key": "review", "label": "Review", "states": ["assessed", "documents_received"]},
        {"key": "repair", "label": "Repair", "states": ["approved", "scheduled", "repaired"]},
        {"key": "billing", "label": "Billing", "states": ["invoiced"]},
    ],
}
FULL = [
    "submitted",
    "triaged",
    "assessed",
    "documents_requested",
    "documents_received",
    "documents_requested",
    "documents_received",
    "documents_requested",
    "documents_received",
    "approved",
    "scheduled",
    "repaired",
    "invoiced",
    "paid",
]
REJECTED = ["submitted", "triaged", "assessed", "rejected"]
WINDOWS = ["7", "30", "90", "365", "all"]
INDEX = "instance_model_started"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000, help="instances per INSERT statement")
    parser.add_argument("--runs", type=int, default=20, help="recomputes and page views per window and kind")
    parser.add_argument("--windows", default="7,30", help="windows whose page views are measured")
    parser.add_argument("--recompute-windows", default=",".join(WINDOWS), help="windows whose recompute is timed")
    parser.add_argument("--repeat", type=int, default=1, help="run everything this many times; report medians")
    parser.add_argument("--skip-generate", action="store_true", help="reuse the database as it is")
    parser.add_argument("--index", action="store_true", help=f"add {INDEX} before measuring")
    parser.add_argument("--drop-index", action="store_true", help=f"drop {INDEX} before measuring")
    parser.add_argument("--explain", action="store_true", help="print the plan of the default window's statement")
    return parser.parse_args()


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    # The shared cache as production has it: Redis (a database of its own, cleared by this script).
    os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/7")
    os.environ.setdefault("SECRET_KEY", "dashboard-bench-only")
    os.environ["DEBUG"] = "False"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["STATIC_MANIFEST"] = "False"
    os.environ.setdefault("STATUSTRACKER_VAR_DIR", str(ROOT / "var" / "bench-dashboard"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    dsn = f"host={database['HOST'] or '127.0.0.1'} user={database['USER'] or 'postgres'} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone():
            conn.execute(f'DROP DATABASE "{database["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database["NAME"]}"')


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def _other_columns(cur, table: str, named: set[str]) -> tuple[str, str]:
    """Columns the bench does not name that need a value (NOT NULL, no default): names and empty values."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL",
        [table],
    )
    empty = {"jsonb": "'{}'::jsonb", "text": "''", "character varying": "''", "boolean": "false", "integer": "0"}
    others = [(name, empty[kind]) for name, kind in cur.fetchall() if name not in named]
    return "".join(f", {name}" for name, _ in others), "".join(f", {value}" for _, value in others)


def generate(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    from models_registry.services import model_import

    call_command("migrate", verbosity=0)
    version, _ = model_import(document=MODEL)
    log(f"migrated, bench model loaded (version id {version.pk})")
    tables = ["tracking_processinstance", "tracking_transitionrecord"]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)",
            [tables],
        )
        constraints = cur.fetchall()
        for name, table, _ in constraints:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE '%%_pkey'",
            [tables],
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET session_replication_role = replica")
        cur.execute("SELECT setseed(0.42)")
        history_columns, history_values = _other_columns(
            cur,
            "tracking_transitionrecord",
            {"id", "instance_id", "event_id", "from_state", "to_state", "occurred_at", "recorded_at", "note"},
        )
        full = "ARRAY[" + ",".join(f"'{s}'" for s in FULL) + "]::text[]"
        rejected = "ARRAY[" + ",".join(f"'{s}'" for s in REJECTED) + "]::text[]"
        cur.execute("DROP TABLE IF EXISTS bench_plan")
        cur.execute("CREATE UNLOGGED TABLE bench_plan (i bigint PRIMARY KEY, states text[], at timestamptz[])")
        now = datetime.now(tz=UTC)
        started = time.perf_counter()
        for first in range(1, args.instances + 1, args.chunk):
            last = min(first + args.chunk - 1, args.instances)
            # i % 10: 0-5 paid, 6 rejected, 7-9 open after a prefix of the full path. Each step
            # comes 0.5 to 30 hours after the one before; starts spread evenly over 365 days.
            cur.execute(
                f"""
                INSERT INTO bench_plan (i, states, at)
                SELECT i, states,
                       (SELECT array_agg(start + interval '1 hour' * gaps.total ORDER BY n)
                          FROM (SELECT n, sum(CASE WHEN n = 1 THEN 0 ELSE 0.5 + random() * 29.5 END)
                                          OVER (ORDER BY n) AS total
                                  FROM generate_series(1, cardinality(states)) AS n) gaps)
                  FROM (
                    SELECT i,
                           CASE WHEN mod(i, 10) < 6 THEN {full}
                                WHEN mod(i, 10) = 6 THEN {rejected}
                                ELSE ({full})[1:1 + mod(i / 10, 12)] END AS states,
                           %(now)s - interval '365 days' * (1 - i::float8 / %(total)s) - interval '30 hours' AS start
                      FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
                  ) plan
                """,
                {"now": now, "total": args.instances, "first": first, "last": last},
            )
            cur.execute(
                """
                INSERT INTO tracking_processinstance
                    (id, model_id, version_id, transaction_id, state, status, context, created_at, started_at,
                     state_entered_at, updated_at, link_nonce)
                SELECT i, %(model)s, %(version)s, 'CLAIM-' || i, states[cardinality(states)],
                       CASE states[cardinality(states)] WHEN 'paid' THEN 'succeeded' WHEN 'rejected' THEN 'failed'
                            WHEN 'documents_requested' THEN 'in_exception' ELSE 'active' END,
                       '{}'::jsonb, at[1], at[1], at[cardinality(at)], at[cardinality(at)], md5(i::text)
                  FROM bench_plan WHERE i BETWEEN %(first)s AND %(last)s
                """,
                {"model": version.model_id, "version": version.pk, "first": first, "last": last},
            )
            cur.execute(
                f"""
                INSERT INTO tracking_transitionrecord
                    (instance_id, event_id, from_state, to_state, occurred_at, recorded_at, note{history_columns})
                SELECT p.i, NULL, COALESCE(p.states[n - 1], ''), s, p.at[n], p.at[n] + interval '3 seconds',
                       ''{history_values}
                  FROM bench_plan p CROSS JOIN LATERAL unnest(p.states) WITH ORDINALITY AS u(s, n)
                 WHERE p.i BETWEEN %(first)s AND %(last)s
                 ORDER BY p.i, n
                """,
                {"first": first, "last": last},
            )
            log(f"instances {first:,}-{last:,} written ({time.perf_counter() - started:.0f}s)")
        cur.execute("SET session_replication_role = origin")
        for name, table, definition in constraints:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            cur.execute(definition)
            log(f"index {name} rebuilt")
        for table in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        cur.execute("DROP TABLE bench_plan")
        cur.execute("VACUUM (ANALYZE) tracking_processinstance")
        cur.execute("VACUUM (ANALYZE) tracking_transitionrecord")
        cur.execute("SELECT count(*) FROM tracking_transitionrecord")
        log(f"{cur.fetchone()[0]:,} history rows; generated in {time.perf_counter() - started:.0f}s")


def set_index(args: argparse.Namespace) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        if args.drop_index:
            cur.execute(f"DROP INDEX IF EXISTS {INDEX}")
            log(f"{INDEX} dropped")
        if args.index:
            phase = time.perf_counter()
            cur.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON tracking_processinstance (model_id, started_at)")
            cur.execute("ANALYZE tracking_processinstance")
            log(f"{INDEX} built in {time.perf_counter() - phase:.1f}s")
        cur.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [INDEX])
        log(f"{INDEX}: {'present' if cur.fetchone() else 'absent'}")


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed_view(client, path: str, window: str, expect: str) -> float:
    began = time.perf_counter()
    response = client.get(path, {"window": window})
    elapsed = (time.perf_counter() - began) * 1000
    assert response.status_code == 200, response.status_code
    assert expect in response.content.decode(), expect
    return elapsed


def measure(args: argparse.Namespace) -> dict[str, float]:
    """One run: every figure of it, by name (milliseconds for views, seconds for recomputes)."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client
    from django.utils import timezone

    from tracking.insights.selectors import cache_key, dashboard_scope
    from tracking.insights.services import dashboard_refresh

    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    path = f"/admin/dashboard/{MODEL['id']}/"
    figures: dict[str, float] = {}
    # A web process's first request imports and compiles what the page needs; a production
    # process has served many before. Not counted.
    client.get(path)

    def days(window: str) -> int | None:
        return None if window == "all" else int(window)

    for window in args.recompute_windows.split(","):
        began = time.perf_counter()
        dashboard = dashboard_refresh(model_key=MODEL["id"], version=None, window_days=days(window))
        figures[f"recompute {window}"] = time.perf_counter() - began
        log(
            f"window {window:>4}: recompute {figures[f'recompute {window}']:6.1f} s ({dashboard.instances:,} instances)"
        )
    for window in args.windows.split(","):
        scope = dashboard_scope(model_key=MODEL["id"], version=None, window_days=days(window))
        cold, warm, pending = [], [], []
        for _ in range(args.runs):
            dashboard_refresh(model_key=MODEL["id"], version=None, window_days=days(window))
            cold.append(timed_view(client, path, window, "Figures as of"))
        for _ in range(args.runs):
            warm.append(timed_view(client, path, window, "Figures as of"))
        for _ in range(args.runs):
            cache.delete(cache_key(scope))
            cache.set(cache_key(scope, "queued"), timezone.now())
            pending.append(timed_view(client, path, window, "being computed"))
        cache.delete(cache_key(scope, "queued"))
        dashboard_refresh(model_key=MODEL["id"], version=None, window_days=days(window))
        for kind, samples in (("cold", cold), ("warm", warm), ("pending", pending)):
            figures[f"{kind} p50 {window}"], figures[f"{kind} p95 {window}"] = p50_p95(samples)
            log(
                f"window {window:>4}: {kind:<7} p50 {figures[f'{kind} p50 {window}']:6.1f} ms   "
                f"p95 {figures[f'{kind} p95 {window}']:6.1f} ms   (n={len(samples)})"
            )
    return figures


def explain() -> None:
    from django.db import connection

    from tracking.insights.selectors import _facts, _postgres_statement, dashboard_scope

    scope = dashboard_scope(model_key=MODEL["id"], version=None, window_days=30)
    sql, params = _postgres_statement(scope, _facts(scope)[0])
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\n".join(row[0] for row in cur.fetchall()))


def report(runs: list[dict[str, float]]) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), (SELECT count(*) FROM tracking_transitionrecord) FROM tracking_processinstance")
        instances, rows = cur.fetchone()
    print(f"\n{instances:,} instances, {rows:,} history rows; {len(runs)} run(s), median of the runs")
    print("| figure | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | median |")
    print("| --- |" + " --- |" * (len(runs) + 1))
    for name in runs[0]:
        unit = "s" if name.startswith("recompute") else "ms"
        values = [run[name] for run in runs]
        cells = " | ".join(f"{value:.1f} {unit}" for value in [*values, statistics.median(values)])
        print(f"| {name} | {cells} |")


def main() -> None:
    args = parse_args()
    setup_django()
    if not args.skip_generate:
        ensure_database()
        generate(args)
    set_index(args)
    from django.core.cache import cache

    log(f"cache {cache.__class__.__name__}; load average {os.getloadavg()}")
    runs = []
    for run in range(args.repeat):
        log(f"run {run + 1} of {args.repeat}")
        runs.append(measure(args))
    report(runs)
    if args.explain:
        explain()


if __name__ == "__main__":
    main()
