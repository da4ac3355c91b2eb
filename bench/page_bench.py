"""Benchmark: server time of the customer page and its live poll, on a large PostgreSQL database.

Not a test: it prints figures and writes bench/RESULTS-page.md. It builds (unless
``--skip-generate``) a separate database with the example model, ``--instances`` instances and
``--events-per-instance`` inbox events each (1,000,000 and 10 by default: 10,000,000 events), plus
their transition history, with set-based SQL (``INSERT … SELECT`` over ``generate_series``). Then it
measures, in this process with Django's test client (so: URL routing, middleware, the view, its
queries and template rendering; no network), the time per request of

- a page view (``GET /track/<token>/``),
- a poll when nothing changed (``GET …/live?since=<current>``, answered 204),
- a poll after a change (``GET …/live?since=<older>``, the fragment),

over random instances, and counts the SQL queries of each kind of request for instances with short
and long histories.

    createdb -h 127.0.0.1 -U postgres bench_page   # once; the script can do it too
    .venv/bin/python bench/page_bench.py --instances 1000000 --events-per-instance 10 --requests 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A category per instance (by id modulo 100): how far it went, as a path of states.
PATHS = [
    (60, "delivered", ["received", "paid", "packed", "shipped", "delivered"], "succeeded"),
    (5, "cancelled", ["received", "paid", "cancelled"], "failed"),
    (5, "on_hold", ["received", "on_hold"], "in_exception"),
    (8, "received", ["received"], "active"),
    (8, "paid", ["received", "paid"], "active"),
    (7, "packed", ["received", "paid", "packed"], "active"),
    (7, "shipped", ["received", "paid", "packed", "shipped"], "active"),
]
EVENT_OF = {
    "received": "order.placed",
    "paid": "payment.captured",
    "packed": "warehouse.packed",
    "shipped": "carrier.picked_up",
    "delivered": "carrier.delivered",
    "cancelled": "order.cancelled",
    "on_hold": "payment.failed",
}
# Hours after the order at which each step of a path is reached: base + random spread.
STEP_HOURS = [(0, 0), (0.1, 1.0), (4, 30), (20, 40), (40, 110)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="bench_page")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--events-per-instance", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=100_000, help="instances per INSERT statement")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured kind")
    parser.add_argument("--skip-generate", action="store_true", help="reuse the database as it is")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS-page.md"))
    return parser.parse_args()


def setup_django(args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = f"postgres://{args.user}@{args.host}:5432/{args.database}"
    os.environ.setdefault("SECRET_KEY", "page-bench-only")
    os.environ["DEBUG"] = "False"
    os.environ["STATIC_MANIFEST"] = "False"  # no collectstatic needed; the manifest lookup is a dict read
    os.environ.setdefault("STATUSTRACKER_VAR_DIR", str(ROOT / "var" / "bench-page"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def ensure_database(args: argparse.Namespace) -> None:
    import psycopg

    with psycopg.connect(f"host={args.host} user={args.user} dbname=postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
        if exists:
            conn.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def generate(args: argparse.Namespace) -> dict:
    """Fill the database with set-based SQL; returns timings of the phases."""
    from django.core.management import call_command
    from django.db import connection

    from tests.conftest import load_example_model

    timings = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    version = load_example_model()
    log(f"migrated, example model loaded (version id {version.pk})")

    tables = ["tracking_processinstance", "tracking_inboxevent", "tracking_transitionrecord"]
    with connection.cursor() as cur:
        # Secondary indexes and unique constraints are built once at the end, not row by row.
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
        cur.execute("SET work_mem = '256MB'")
        # Foreign keys hold by construction; skip their per-row triggers while loading.
        cur.execute("SET session_replication_role = replica")
        cur.execute("SELECT setseed(0.42)")

        weights_sql = []
        lower = 0
        for weight, _name, path, status in PATHS:
            states = "ARRAY[" + ",".join(f"'{s}'" for s in path) + "]::text[]"
            weights_sql.append(f"WHEN i %% 100 < {lower + weight} THEN ({states}, '{status}')::bench_path")
            lower += weight
        cur.execute("DROP TYPE IF EXISTS bench_path")
        cur.execute("CREATE TYPE bench_path AS (states text[], status text)")
        offsets = ", ".join(
            f"interval '1 hour' * ({low} + random() * {high - low})" if high else "interval '0'"
            for low, high in STEP_HOURS
        )
        event_case = " ".join(f"WHEN '{state}' THEN '{event}'" for state, event in EVENT_OF.items())
        cur.execute("DROP TABLE IF EXISTS bench_plan")
        cur.execute(
            "CREATE UNLOGGED TABLE bench_plan (i bigint PRIMARY KEY, states text[], status text, at timestamptz[])"
        )
        now = datetime.now(tz=UTC)
        phase = time.perf_counter()
        for first in range(1, args.instances + 1, args.chunk):
            last = min(first + args.chunk - 1, args.instances)
            cur.execute(
                f"""
                INSERT INTO bench_plan (i, states, status, at)
                SELECT i, (p).states, (p).status,
                       (SELECT array_agg(base + o ORDER BY o)
                          FROM unnest(ARRAY[{offsets}]) WITH ORDINALITY AS u(o, n)
                         WHERE n <= cardinality((p).states))
                  FROM (
                    SELECT i, CASE {" ".join(weights_sql)} END AS p,
                           %(now)s - interval '70 days' + (interval '60 days') * (i::float8 / %(total)s) AS base
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
                SELECT i, %(model)s, %(version)s, 'ORD-' || i, states[cardinality(states)], status,
                       CASE WHEN 'shipped' = ANY(states)
                            THEN jsonb_build_object('carrier', 'DHL', 'tracking_number', 'JD' || lpad(i::text, 12, '0'))
                            ELSE '{}'::jsonb END,
                       at[1], at[1], at[cardinality(at)], at[cardinality(at)],
                       md5(i::text || random()::text)
                  FROM bench_plan WHERE i BETWEEN %(first)s AND %(last)s
                """,
                {"model": version.model_id, "version": version.pk, "first": first, "last": last},
            )
            cur.execute(
                f"""
                INSERT INTO tracking_inboxevent
                    (id, event_id, model_id, instance_id, event_type, occurred_at, received_at, envelope,
                     source_kind, source_ref, status, reason, processed_at, duplicate_count)
                SELECT (p.i - 1) * %(per)s + k, 'ev-' || p.i || '-' || k, %(model)s, p.i, e.type, e.at,
                       e.at + interval '2 seconds',
                       jsonb_build_object('event_id', 'ev-' || p.i || '-' || k, 'model_id', 'order-fulfilment',
                                          'transaction_id', 'ORD-' || p.i, 'event_type', e.type,
                                          'occurred_at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                          'source', 'shop', 'data', jsonb_build_object('seq', k)),
                       'api', '', e.status, e.reason, e.at + interval '3 seconds', 0
                  FROM bench_plan p
                 CROSS JOIN generate_series(1, %(per)s) AS k
                 CROSS JOIN LATERAL (
                    SELECT CASE WHEN k <= cardinality(p.states)
                                THEN CASE p.states[k] {event_case} END ELSE 'carrier.scan' END AS type,
                           CASE WHEN k <= cardinality(p.states) THEN p.at[k]
                                ELSE p.at[cardinality(p.at)] + interval '1 minute' * k END AS at,
                           CASE WHEN k <= cardinality(p.states) THEN 'applied' ELSE 'ignored' END AS status,
                           CASE WHEN k <= cardinality(p.states) THEN '' ELSE 'no transition for this event'
                           END AS reason
                 ) e
                 WHERE p.i BETWEEN %(first)s AND %(last)s
                """,
                {"per": args.events_per_instance, "model": version.model_id, "first": first, "last": last},
            )
            cur.execute(
                """
                INSERT INTO tracking_transitionrecord
                    (instance_id, event_id, from_state, to_state, occurred_at, recorded_at, note, context_updates)
                SELECT p.i, (p.i - 1) * %(per)s + n, COALESCE(p.states[n - 1], ''), s, p.at[n],
                       p.at[n] + interval '3 seconds', '', '{}'::jsonb
                  FROM bench_plan p CROSS JOIN LATERAL unnest(p.states) WITH ORDINALITY AS u(s, n)
                 WHERE p.i BETWEEN %(first)s AND %(last)s
                 ORDER BY p.i, n
                """,
                {"per": args.events_per_instance, "first": first, "last": last},
            )
            log(f"instances {first:,}-{last:,} written ({time.perf_counter() - phase:.0f}s)")
        timings["rows_s"] = time.perf_counter() - phase

        cur.execute("SET session_replication_role = origin")
        phase = time.perf_counter()
        for name, table, definition in constraints:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            log(f"constraint {name} rebuilt")
        for name, definition in indexes:
            cur.execute(definition)
            log(f"index {name} rebuilt")
        timings["indexes_s"] = time.perf_counter() - phase
        for table in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        cur.execute("DROP TABLE bench_plan")
        cur.execute("DROP TYPE bench_path")
        phase = time.perf_counter()
        cur.execute("VACUUM (ANALYZE) tracking_processinstance")
        cur.execute("VACUUM (ANALYZE) tracking_transitionrecord")
        cur.execute("VACUUM (ANALYZE) tracking_inboxevent")
        timings["analyze_s"] = time.perf_counter() - phase
    timings["total_s"] = time.perf_counter() - started
    with connection.cursor() as cur:
        # Kept with the data, so that a later --skip-generate run can still report them.
        cur.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value float8)")
        cur.executemany("INSERT INTO bench_meta VALUES (%s, %s)", list(timings.items()))
    return timings


def stored_timings() -> dict | None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_meta') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT key, value FROM bench_meta")
        return dict(cur.fetchall())


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": cuts[94],
        "p99": cuts[98],
        "mean": statistics.fmean(ordered),
        "max": ordered[-1],
    }


def measure(args: argparse.Namespace) -> dict:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tracking.models import InboxEvent, ProcessInstance, TransitionRecord
    from tracking.progress.links import instance_tracking_url
    from tracking.progress.selectors import version_completion_stats

    load_before = os.getloadavg()[0]
    counts = {
        "instances": ProcessInstance.objects.count(),
        "events": InboxEvent.objects.count(),
        "transitions": TransitionRecord.objects.count(),
    }
    log(f"database holds {counts}")
    high = ProcessInstance.objects.order_by("-id").values_list("id", flat=True).first()
    rng = random.Random(11)
    ids = rng.sample(range(1, high + 1), min(args.requests, high))
    instances = {i.pk: i for i in ProcessInstance.objects.filter(pk__in=ids).only("id", "link_nonce", "status")}
    paths = {pk: "/" + instance_tracking_url(instance=i).split("/", 3)[3] for pk, i in instances.items()}
    client = Client(HTTP_HOST="localhost")

    # Cold: the completion statistics of the version (one query, then cached).
    version_id = ProcessInstance.objects.filter(pk=ids[0]).values_list("version_id", flat=True).get()
    cold = []
    for _ in range(5):
        cache.clear()
        started = time.perf_counter()
        stats = version_completion_stats(version_id=version_id)
        cold.append((time.perf_counter() - started) * 1000)
    log(f"completion statistics, cold: median {statistics.median(cold):.1f} ms; {len(stats)} milestones")

    # Warm up the per-process caches and the database's buffers for the sampled rows.
    for pk in ids[: min(200, len(ids))]:
        assert client.get(paths[pk]).status_code == 200

    def timed(path: str, expected: int) -> float:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == expected, (path, response.status_code)
        return elapsed

    page_ms, live_urls = [], {}
    for pk in ids:
        started = time.perf_counter()
        response = client.get(paths[pk])
        page_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        body = response.content.decode()
        marker = 'hx-get="'
        if marker in body:
            live_urls[pk] = body.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
    log(f"page views: {len(page_ms)}")
    unchanged_ms, rollovers = [], 0
    for pk, url in live_urls.items():
        # The stamp holds the instance's minute, which turns at the second its id modulo 60 says
        # (the page refreshes once a minute anyway): poll as a browser that loaded the page this
        # minute would.
        current = url.rsplit(".", 1)[0] + f".{(int(time.time()) + pk % 60) // 60}"
        started = time.perf_counter()
        response = client.get(current)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            rollovers += 1  # the minute turned between building the URL and the request
            continue
        assert response.status_code == 204, (current, response.status_code)
        unchanged_ms.append(elapsed)
    log(f"polls, nothing changed: {len(unchanged_ms)} (+{rollovers} at a minute's turn, not counted)")
    changed_ms = [timed(url.split("since=")[0] + "since=0.0", 200) for url in live_urls.values()]
    log(f"polls after a change: {len(changed_ms)}")

    # Queries per request, by kind of instance and history length.
    query_rows = []
    for status in ["active", "in_exception", "succeeded", "failed"]:
        sample = ProcessInstance.objects.filter(status=status).order_by("id").only("id", "link_nonce")[:1].get()
        history = TransitionRecord.objects.filter(instance_id=sample.pk).count()
        path = "/" + instance_tracking_url(instance=sample).split("/", 3)[3]
        with CaptureQueriesContext(connection) as page_queries:
            body = client.get(path).content.decode()
        row = {"status": status, "history": history, "page": len(page_queries)}
        if 'hx-get="' in body:
            url = body.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            with CaptureQueriesContext(connection) as unchanged_queries:
                client.get(url)
            with CaptureQueriesContext(connection) as changed_queries:
                client.get(url.split("since=")[0] + "since=0.0")
            row.update(poll_unchanged=len(unchanged_queries), poll_changed=len(changed_queries))
        query_rows.append(row)
    # The same instance with a much longer history: the count must not move.
    long_one = ProcessInstance.objects.filter(status="active", state="paid").order_by("id").first()
    TransitionRecord.objects.bulk_create(
        TransitionRecord(instance=long_one, from_state="paid", to_state="paid", occurred_at=long_one.updated_at)
        for _ in range(1000)
    )
    path = "/" + instance_tracking_url(instance=long_one).split("/", 3)[3]
    with CaptureQueriesContext(connection) as long_queries:
        client.get(path)
    query_rows.append(
        {
            "status": "active (1,000 extra history rows)",
            "history": TransitionRecord.objects.filter(instance=long_one).count(),
            "page": len(long_queries),
        }
    )
    TransitionRecord.objects.filter(instance=long_one, from_state="paid", to_state="paid").delete()

    return {
        "load": (load_before, os.getloadavg()[0]),
        "counts": counts,
        "cold_stats_ms": statistics.median(cold),
        "page": percentiles(page_ms),
        "poll_unchanged": percentiles(unchanged_ms),
        "poll_changed": percentiles(changed_ms),
        "queries": query_rows,
        "explain": explain(next(iter(instances.values()))),
    }


def explain(instance) -> str:
    from django.db import connection

    with connection.cursor() as cur:
        lines = []
        for sql, params in [
            (
                "SELECT id, version_id, state, status, context, state_entered_at, updated_at, link_nonce "
                "FROM tracking_processinstance WHERE link_nonce = %s AND status <> 'waiting' "
                "AND version_id IS NOT NULL ORDER BY id LIMIT 1",
                [instance.link_nonce],
            ),
            (
                "SELECT to_state, occurred_at FROM tracking_transitionrecord WHERE instance_id = %s ORDER BY id",
                [instance.pk],
            ),
        ]:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
            lines.append("\n".join(row[0] for row in cur.fetchall()))
    return "\n\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        buffers = cur.fetchone()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; {platform.platform()}; Python "
        f"{platform.python_version()}; PostgreSQL {pg} (shared_buffers {buffers}, on the same machine)"
    )


def report(args: argparse.Namespace, generated: dict | None, results: dict) -> str:
    def row(name: str, p: dict) -> str:
        return f"| {name} | {p['n']:,} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['mean']:.2f} | {p['max']:.1f} |"

    command = "  ".join(
        [".venv/bin/python bench/page_bench.py"]
        + [f"--instances {args.instances}", f"--events-per-instance {args.events_per_instance}"]
        + [f"--requests {args.requests}"]
        + (["--skip-generate"] if args.skip_generate else [])
    ).replace("  ", " ")
    counts = results["counts"]
    lines = [
        "# Customer page benchmark",
        "",
        f"Measured {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC with `{command}` (database `{args.database}`).",
        "",
        f"Machine: {machine()}. The machine is shared with other work, so figures vary between runs: "
        f"1-minute load average {results['load'][0]:.1f} before and {results['load'][1]:.1f} after the "
        "measurement.",
        "",
        f"Data: {counts['instances']:,} instances, {counts['events']:,} inbox events, "
        f"{counts['transitions']:,} transition records of the example model (60% delivered, 5% cancelled, "
        "5% on hold, 30% under way).",
        "",
    ]
    if generated:
        lines += [
            f"Generating it took {generated['total_s'] / 60:.1f} min: rows {generated['rows_s']:.0f} s, "
            f"indexes and constraints {generated['indexes_s']:.0f} s, VACUUM ANALYZE {generated['analyze_s']:.0f} s.",
            "",
        ]
    lines += [
        "Server time per request in milliseconds, in-process through Django's test client (routing, middleware, "
        "view, queries, template), random instances, after a warm-up of 200 page views:",
        "",
        "| request | n | p50 | p95 | p99 | mean | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("page view `GET /track/<token>/`", results["page"]),
        row("poll, nothing changed (204)", results["poll_unchanged"]),
        row("poll after a change (fragment)", results["poll_changed"]),
        "",
        f"Completion statistics of the version, computed cold (one query over the latest "
        f"{_setting('STATUSTRACKER_ETA_SAMPLE_SIZE')} completed instances, then cached for "
        f"{_setting('STATUSTRACKER_ETA_CACHE_SECONDS')} s): median {results['cold_stats_ms']:.1f} ms over 5 runs.",
        "",
        "SQL queries per request (the version's definition and completion statistics come from per-process caches "
        "once warm):",
        "",
        "| instance | history rows | page view | poll, unchanged | poll, changed |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for q in results["queries"]:
        lines.append(
            f"| {q['status']} | {q['history']:,} | {q['page']} | {q.get('poll_unchanged', '–')} | "
            f"{q.get('poll_changed', '–')} |"
        )
    target_ms = 25
    met = all(results[kind]["p95"] < target_ms for kind in ("page", "poll_unchanged", "poll_changed"))
    lines += [
        "",
        f"Target p95 under {target_ms} ms for page views and polls: {'met' if met else 'NOT met'} "
        f"(page view p95 {results['page']['p95']:.1f} ms, poll p95 {results['poll_unchanged']['p95']:.1f} / "
        f"{results['poll_changed']['p95']:.1f} ms). Not included: the WSGI server, the network, and the time "
        "the browser takes; the web process and PostgreSQL share the same 2 cores here.",
        "",
        "Plans of the two queries of a page view:",
        "",
        "```",
        results["explain"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _setting(name: str):
    from django.conf import settings

    return getattr(settings, name)


def main() -> None:
    args = parse_args()
    if not args.skip_generate:
        ensure_database(args)
    setup_django(args)
    generated = stored_timings() if args.skip_generate else generate(args)
    if generated and not args.skip_generate:
        log(f"generated in {generated['total_s']:.0f}s")
    results = measure(args)
    text = report(args, generated, results)
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
