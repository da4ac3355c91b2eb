"""Benchmark: ``ingest_events`` of N events to applied state on PostgreSQL with Celery workers.

Not a test: it prints figures. Each run starts from an empty database, imports the example model,
starts one ``celery worker`` with ``--concurrency`` pool processes on Redis, feeds a generated
JSON Lines file through ``manage.py ingest_events`` and waits until no event is pending. It reports
the time to ingest and the time until the last event is applied, and the median over the runs.

    .venv/bin/python bench/ingest_bench.py --events 100000 --runs 3 --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    ("order.placed", {}),
    ("payment.captured", {"amount": 10}),
    ("warehouse.packed", {}),
    ("carrier.picked_up", {"carrier": "DHL", "tracking_number": "T"}),
    ("carrier.delivered", {}),
]


def generate(path: Path, events: int, seed: int = 7) -> None:
    """Orders of five events each, interleaved across orders as live traffic would be."""
    rng = random.Random(seed)
    orders = events // len(STEPS)
    cursors = [0] * orders
    active = list(range(orders))
    with path.open("w") as out:
        while active:
            index = rng.randrange(len(active))
            order = active[index]
            event_type, data = STEPS[cursors[order]]
            out.write(
                json.dumps(
                    {
                        "event_id": f"o{order}-{cursors[order]}",
                        "model_id": "order-fulfilment",
                        "transaction_id": f"ORD-{order}",
                        "event_type": event_type,
                        "data": data,
                    }
                )
                + "\n"
            )
            cursors[order] += 1
            if cursors[order] == len(STEPS):
                active[index] = active[-1]
                active.pop()


def reset_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def one_run(args, env: dict, data: Path) -> dict:
    reset_database(args.admin_url, args.database)
    subprocess.run(["redis-cli", "-n", args.redis_db, "FLUSHDB"], check=True, stdout=subprocess.DEVNULL)
    manage(env, "migrate", "-v0")
    manage(env, "import_models", "examples/order-fulfilment.yaml")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "statustracker", "worker", "-l", "warning",
         "-c", str(args.concurrency), "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(3)  # let the worker connect before the clock starts
        started = time.perf_counter()
        manage(env, "ingest_events", str(data))
        ingested = time.perf_counter()
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            while conn.execute("SELECT count(*) FROM tracking_inboxevent WHERE status = 'pending'").fetchone()[0]:
                time.sleep(0.2)
            finished = time.perf_counter()
            counts = dict(conn.execute("SELECT status, count(*) FROM tracking_inboxevent GROUP BY status").fetchall())
    finally:
        worker.terminate()
        worker.wait()
    return {"ingest_s": ingested - started, "applied_s": finished - started, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="bench_ingest")
    parser.add_argument("--redis-db", default="13")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "SECRET_KEY": "bench",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "events.jsonl"
        generate(data, args.events)
        runs = []
        for number in range(1, args.runs + 1):
            result = one_run(args, env, data)
            runs.append(result)
            print(
                f"run {number}: ingested in {result['ingest_s']:.1f} s, all applied after {result['applied_s']:.1f} s "
                f"-> {args.events / result['applied_s']:.0f} events/s; outcomes {result['counts']}"
            )
    median = statistics.median(r["applied_s"] for r in runs)
    print(f"\n{args.events} events, {args.concurrency} worker processes, PostgreSQL + Redis, {args.runs} runs")
    print(f"median time to all applied: {median:.1f} s = {args.events / median:.0f} events/s")
    print(f"median ingest only: {statistics.median(r['ingest_s'] for r in runs):.1f} s")


if __name__ == "__main__":
    main()
