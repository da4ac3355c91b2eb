"""Benchmark: webhook deliveries per second to a receiver on 127.0.0.1, by real Celery workers on
PostgreSQL and Redis.

Not a test: it prints figures. Each run starts from empty tables with the example model and one
subscription to its transitions, pointing at a real HTTP server in this process (a threading
``http.server`` on 127.0.0.1 that verifies every signature with the ``standardwebhooks`` package and
answers 204). Then:

1. **The outbox is filled.** ``--orders`` orders of five events (five transitions each) are ingested
   with ``manage.py ingest_events`` and applied by a worker reading the model's queue only; each
   apply writes its notification rows and queues their delivery task, as in production, on the
   default queue, which no worker reads yet. N = 5 × orders notifications across M = orders
   instances.
2. **Deliveries are timed.** ``celery worker`` processes (``--concurrency``) start on the default
   queue and send them; timed from the first request the receiver gets to the last, and checked:
   every notification ``delivered``, each ``webhook-id`` received once at least, a transaction's
   notifications in order, every signature valid.

CPU time of the workers, PostgreSQL's backends and this process (the receiver) is read from /proc.
It uses the database ``notifybench`` (dropped and created) and Redis db 13 (flushed), from
``DATABASE_URL`` and ``CELERY_BROKER_URL`` when set.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/notifybench CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/notify_bench.py --orders 2000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kinesis_bench import (  # noqa: E402
    MODEL,
    TRIGGER_SQL,
    Managed,
    backend_pids,
    cpu_seconds,
    order_events,
    ping_worker,
)

PYTHON = sys.executable
APPLY_QUEUE = "bench_apply"
DELIVERY_QUEUE = "statustracker"
SECRET = "whsec_YmVuY2gtb25seS1zZWNyZXQtMTIzNDU2"


class Receiver:
    """A real endpoint on 127.0.0.1: verifies each delivery, notes when it came, answers 204."""

    def __init__(self):
        from standardwebhooks import Webhook

        self.webhook = Webhook(SECRET)
        self.lock = threading.Lock()
        self.received: list[tuple[float, str, str, str]] = []  # (time, webhook-id, transaction, to_state)
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    data = receiver.webhook.verify(body, headers)["data"]
                    entry = (time.time(), headers["webhook-id"], data["transaction_id"], data["to_state"])
                    with receiver.lock:
                        receiver.received.append(entry)
                    self.send_response(204)
                except Exception:  # noqa: BLE001 - any failure to verify is a bad signature here
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.bad_signatures = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args, self.workdir = args, workdir
        self.database_url = args.database_url
        self.dsn = self.database_url.replace("postgres://", "postgresql://", 1)
        parts = urlsplit(self.dsn)
        self.database = parts.path.lstrip("/")
        self.admin_dsn = parts._replace(path="/postgres").geturl()
        self.broker = args.broker_url
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker,
            "SECRET_KEY": "notify-bench-only",
            "DEBUG": "False",
            "LOG_LEVEL": "WARNING",
            "STATUSTRACKER_VAR_DIR": str(ROOT / "var" / "bench-notify"),
            "CELERY_PREFETCH_MULTIPLIER": str(args.prefetch),
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        }
        self.receiver = Receiver()
        self.events_file = workdir / "events.jsonl"

    def prepare(self) -> None:
        print(f"preparing {self.database}, receiver at {self.receiver.url}", flush=True)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        subprocess.run(
            [PYTHON, "manage.py", "import_models", "examples/order-fulfilment.yaml"],
            cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(TRIGGER_SQL)
            # Applies go to a queue of their own, so that deliveries wait until the timed phase.
            conn.execute("UPDATE models_registry_statusmodel SET queue = %s WHERE key = %s", [APPLY_QUEUE, MODEL])
        events = order_events("N", self.args.orders * 5, seed=3)
        self.events_file.write_text("".join(json.dumps(e) + "\n" for e in events))

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE tracking_transitionrecord, tracking_inboxevent, tracking_processinstance, "
                "tracking_deadletter, tracking_webhooksubscription RESTART IDENTITY CASCADE"
            )
            conn.execute(
                """INSERT INTO tracking_webhooksubscription (model_id, url, description, kinds, states, milestones,
                       context_fields, secret, previous_secret, is_active, disabled_reason, created_at)
                   SELECT id, %s, 'bench', '["transition"]', '[]', '[]', '["carrier", "tracking_number"]', %s, '',
                       true, '', now() FROM models_registry_statusmodel WHERE key = %s""",
                [self.receiver.url, SECRET, MODEL],
            )
            conn.execute("VACUUM ANALYZE tracking_notification, tracking_processinstance")
        client = redis.Redis.from_url(self.broker)
        client.flushdb()
        client.close()
        self.receiver.reset()

    def worker(self, name: str, queue: str, concurrency: int) -> Managed:
        command = [
            PYTHON, "-m", "celery", "-A", "statustracker", "worker", "-l", "warning", "-c", str(concurrency),
            "-Q", queue, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        worker = Managed(name, command, env=self.env, log=self.workdir / f"{name}.log")
        import socket

        ping_worker(self.broker, f"{name}@{socket.gethostname()}")
        return worker

    def count(self, sql: str) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]

    def wait(self, sql: str, target: int, what: str) -> None:
        deadline = time.monotonic() + self.args.timeout
        while (n := self.count(sql)) < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: only {n} of {target} in {self.args.timeout:.0f} s")
            time.sleep(0.2)

    def run(self, number: int) -> dict:
        print(f"run {number}", flush=True)
        self.reset()
        expected = self.args.orders * 5
        # 1. fill the outbox: ingest and apply; the deliveries wait on the default queue
        applier = self.worker(f"notify-apply-{number}", APPLY_QUEUE, 2)
        try:
            subprocess.run(
                [PYTHON, "manage.py", "ingest_events", str(self.events_file)],
                cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            self.wait("SELECT count(*) FROM tracking_notification", expected, "notifications written")
        finally:
            applier.stop()
        tasks = redis.Redis.from_url(self.broker).llen(DELIVERY_QUEUE)
        # 2. deliver
        workers = self.worker(f"notify-deliver-{number}", DELIVERY_QUEUE, self.args.concurrency)
        cpu_before = {pid: cpu_seconds(pid) for pid in workers.pids()}
        pg = backend_pids(self.admin_dsn, self.database)
        pg_before = {pid: cpu_seconds(pid) for pid in pg}
        me_before = cpu_seconds(os.getpid())
        try:
            self.wait(
                "SELECT count(*) FROM tracking_notification WHERE status = 'delivered'",
                expected,
                "notifications delivered",
            )
            worker_cpu = sum(cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in workers.pids())
            pg_cpu = sum(
                cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in backend_pids(self.admin_dsn, self.database)
            )
            me_cpu = cpu_seconds(os.getpid()) - me_before
        finally:
            workers.stop()
        received = sorted(self.receiver.received)
        first, last = received[0][0], received[-1][0]
        ids = {r[1] for r in received}
        # Order per transaction, by each notification's first arrival (a repeat is at-least-once, not disorder).
        by_transaction: dict[str, list[str]] = {}
        seen: set[str] = set()
        for _, webhook_id, transaction_id, to_state in received:
            if webhook_id not in seen:
                seen.add(webhook_id)
                by_transaction.setdefault(transaction_id, []).append(to_state)
        steps = ["received", "paid", "packed", "shipped", "delivered"]
        out_of_order = sum(1 for states in by_transaction.values() if [s for s in steps if s in states] != states)
        result = {
            "notifications": expected,
            "instances": self.args.orders,
            "delivery_tasks": tasks,
            "requests": len(received),
            "unique_ids": len(ids),
            "bad_signatures": self.receiver.bad_signatures,
            "out_of_order": out_of_order,
            "seconds": last - first,
            "rate": len(ids) / (last - first),
            "worker_cpu_us": worker_cpu * 1e6 / expected,
            "postgres_cpu_us": pg_cpu * 1e6 / expected,
            "receiver_cpu_us": me_cpu * 1e6 / expected,
        }
        print(
            f"  {result['unique_ids']} of {expected} notifications ({self.args.orders} instances, {tasks} delivery "
            f"tasks) delivered in {result['seconds']:.1f} s = {result['rate']:.0f} deliveries/s; "
            f"{result['requests']} requests ({result['requests'] - result['unique_ids']} repeats), "
            f"{result['bad_signatures']} bad signatures, "
            f"{out_of_order} transactions out of order",
            flush=True,
        )
        return result

    def close(self) -> None:
        Managed.stop_all()
        self.receiver.close()


def _interrupted(signum, frame) -> None:
    # SIGTERM ends the run like Ctrl-C does, so that every worker started is stopped.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000, help="instances (M); N = 5 × M notifications")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="delivering worker processes")
    parser.add_argument("--prefetch", type=int, default=4, help="CELERY_PREFETCH_MULTIPLIER")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notifybench")
    )
    parser.add_argument("--broker-url", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13"))
    args = parser.parse_args()
    print("command: " + " ".join([Path(PYTHON).name, *sys.argv]), flush=True)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        runs = []
        try:
            bench.prepare()
            for number in range(1, args.runs + 1):
                runs.append(bench.run(number))
        finally:
            bench.close()
    load_after = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{args.orders * 5} notifications across {args.orders} instances, {args.concurrency} delivering processes\n")
    print("| figure | " + " | ".join(f"run {i}" for i in range(1, len(runs) + 1)) + " | median |")
    print("|" + " --- |" * (len(runs) + 2))
    for key, name, fmt in [
        ("rate", "deliveries/s (first request -> last)", ".0f"),
        ("seconds", "seconds", ".1f"),
        ("delivery_tasks", "delivery tasks queued by the applies", ".0f"),
        ("requests", "requests received (repeats included)", ".0f"),
        ("worker_cpu_us", "worker CPU per delivery, µs", ".0f"),
        ("postgres_cpu_us", "PostgreSQL CPU per delivery, µs", ".0f"),
        ("receiver_cpu_us", "receiver CPU per delivery, µs", ".0f"),
    ]:
        values = [r[key] for r in runs]
        print(
            f"| {name} | "
            + " | ".join(format(v, fmt) for v in values)
            + f" | {format(statistics.median(values), fmt)} |"
        )


if __name__ == "__main__":
    main()
