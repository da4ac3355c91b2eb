"""Benchmark: Kinesis stream -> consume_kinesis -> inbox -> Celery workers -> PostgreSQL, end to end.

Not a test: it prints figures. It starts kinesalite on 127.0.0.1, creates 4-shard streams and,
in each run, measures three things side by side:

1. **Throughput.** ``--events`` events (orders of five events, interleaved) are on the stream
   before the consumers start; ``manage.py consume_kinesis`` process(es) read them into the inbox
   and real ``celery worker`` processes (Redis broker) apply them. Timed from the start of the
   first GetRecords call that returned records (the consumers' DEBUG ``read`` log lines) to the
   commit of the last event applied.
2. **Latency** at a fixed offered rate (``--rate`` events/s for ``--latency-seconds``): a producer
   thread puts events on a fresh stream, each carrying its put time in ``data.sent_at``. Latency is
   the time until the event is applied: ``processed_at`` (set when the apply transaction starts),
   and the commit, when a reader can see it.
3. **The naive design** (bench/naive_apply.py): the first ``--naive-events`` of the same events
   through one Celery task per record, each storing and applying its one event, timed the same way.

``--subscribe-all`` measures the throughput phase twice in each run, side by side (the order
alternating between runs): without any webhook subscription, and with one subscription of the model
that matches every change (no filters, two context fields), so that the apply writes a notification
row for every transition, milestone and outcome in its transaction (docs/notifications.md). The
deliveries those rows ask for are queued on a queue no worker reads during the phase
(``CELERY_DEFAULT_QUEUE=bench_deliver``; apply tasks go to the model's queue), so that the figure is
the apply path's own cost; bench/notify_bench.py measures delivering them.

Commit times come from ``LISTEN``: the benchmark databases get a statement trigger that sends
the ids of newly decided inbox events with ``pg_notify``, which PostgreSQL delivers at commit.
CPU time per process (consumer, workers, kinesalite, PostgreSQL backends of the benchmark
databases) is read from /proc around each phase, to show where the time goes, together with what
every other process on the machine used meanwhile (the machine is shared); the consumer's peak
RSS is its ``VmHWM``. ``--profile DIR`` also samples the consumers and the workers with py-spy
during the throughput phase and prints where their CPU time goes.

Defaults: 2 consumer processes (one per core) with ``--batch-size 2000``, 2 worker processes,
``STATUSTRACKER_TASK_BATCH_SIZE`` 500 (the product default), prefetch 4; the consumers' lease duration is 3 s so that
the second consumer gets its two shards within a second or two of a short run.

Every process it starts (kinesalite, consumers, workers, the naive reader) is stopped at the end,
also on Ctrl-C. It uses the databases ``bench_kinesis`` and ``bench_kinesis_naive`` (dropped and
created again) and Redis db 5 (flushed).

    .venv/bin/python bench/kinesis_bench.py                  # defaults: 3 runs, 5-9 minutes
    .venv/bin/python bench/kinesis_bench.py --runs 1 --events 20000 --latency-seconds 10
    .venv/bin/python bench/kinesis_bench.py --runs 1 --latency-seconds 0 --naive-events 0 --profile /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracking.arrival.kinesis.emulator import LOCAL_CREDENTIALS, Kinesalite  # noqa: E402
from tracking.arrival.kinesis.producer import records_publish  # noqa: E402
from tracking.arrival.kinesis.streams import stream_create, stream_delete  # noqa: E402

PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MODEL = "order-fulfilment"
STEPS = [
    ("order.placed", {"items": 2}),
    ("payment.captured", {"amount": 129.5, "currency": "EUR"}),
    ("warehouse.packed", {}),
    ("carrier.picked_up", {"carrier": "DHL", "tracking_number": "DH123456789"}),
    ("carrier.delivered", {}),
]
PIPELINE_QUEUE = "statustracker"
NAIVE_QUEUE = "bench_naive"

# Sends the ids of inbox events that were just decided (applied, ignored, expired); PostgreSQL
# delivers notifications when the transaction commits, so the listener learns the commit time.
TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION bench_notify_decided() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    FOR ids IN
        SELECT string_agg(id::text, ',') FROM (
            SELECT id, (row_number() OVER ()) / 500 AS part FROM decided_rows
            WHERE status NOT IN ('pending', 'parked')
        ) AS decided GROUP BY part
    LOOP
        PERFORM pg_notify('bench_decided', ids);
    END LOOP;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS bench_decided_update ON tracking_inboxevent;
DROP TRIGGER IF EXISTS bench_decided_insert ON tracking_inboxevent;
CREATE TRIGGER bench_decided_update AFTER UPDATE ON tracking_inboxevent
    REFERENCING NEW TABLE AS decided_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_decided();
CREATE TRIGGER bench_decided_insert AFTER INSERT ON tracking_inboxevent
    REFERENCING NEW TABLE AS decided_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_decided();
"""
TABLES = (
    "tracking_transitionrecord, tracking_inboxevent, tracking_processinstance, tracking_deadletter, tracking_shardlease"
)
DELIVERY_QUEUE = "bench_deliver"
SUBSCRIBE_ALL_SQL = """
INSERT INTO tracking_webhooksubscription (model_id, url, description, kinds, states, milestones, context_fields,
    secret, previous_secret, is_active, disabled_reason, created_at)
SELECT id, 'http://127.0.0.1:9/hooks', 'bench', %s::jsonb, '[]', '[]', '["carrier", "tracking_number"]',
    'whsec_YmVuY2gtb25seS1zZWNyZXQtMTIzNDU2', '', true, '', now()
FROM models_registry_statusmodel WHERE key = %s
"""
VARIANTS = {
    "subscription": {False: "without subscriptions", True: "with a subscription"},
    "context-index": {False: "without the context index", True: "with the context index"},
}
CONTEXT_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS instance_context ON tracking_processinstance USING gin (context jsonb_path_ops)"
)


# --- events -------------------------------------------------------------------------------------
def order_events(prefix: str, count: int, *, seed: int) -> list[dict]:
    """Orders of five events each, interleaved across orders as live traffic would be."""
    rng = random.Random(seed)
    orders = count // len(STEPS)
    cursors = [0] * orders
    active = list(range(orders))
    events = []
    while active:
        index = rng.randrange(len(active))
        order = active[index]
        event_type, data = STEPS[cursors[order]]
        events.append(
            {
                "event_id": f"{prefix}-{order}-{cursors[order]}",
                "model_id": MODEL,
                "transaction_id": f"{prefix}-ORD-{order}",
                "event_type": event_type,
                "source": "bench",
                "data": dict(data),
            }
        )
        cursors[order] += 1
        if cursors[order] == len(STEPS):
            active[index] = active[-1]
            active.pop()
    return events


def publish(client, stream: str, events: list[dict]) -> float:
    """Put events with the product's producer (ordered per transaction); returns events/s."""
    started = time.perf_counter()
    lines = []
    for number, event in enumerate(events, start=1):
        event["data"]["sent_at"] = time.time()
        lines.append((number, json.dumps(event).encode()))
    report = records_publish(client=client, stream=stream, lines=lines)
    if report.published != len(events):
        raise RuntimeError(f"published {report.published} of {len(events)} events: {report.skipped[:3]}")
    return len(events) / (time.perf_counter() - started)


class RateProducer(threading.Thread):
    """Puts events at a fixed rate, each with its put time in ``data.sent_at``.

    Every ``tick`` seconds it sends the events due by then (so it catches up if a put was slow);
    one PutRecords request never carries two events of one transaction, so their order holds.
    """

    def __init__(self, client, stream: str, events: list[dict], rate: float, tick: float = 0.05):
        super().__init__(daemon=True)
        self.client, self.stream, self.events, self.rate, self.tick = client, stream, events, rate, tick
        self.started_at = self.finished_at = 0.0
        self.requests = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def _run(self) -> None:
        self.started_at = time.time()
        sent = 0
        tick = 0
        while sent < len(self.events):
            tick += 1
            due = min(len(self.events), round(tick * self.tick * self.rate))
            batch, sent = self.events[sent:due], due
            while batch:
                request, seen, rest = [], set(), []
                for event in batch:
                    if event["transaction_id"] in seen or len(request) == 500:
                        rest.append(event)
                    else:
                        seen.add(event["transaction_id"])
                        request.append(event)
                self._put(request)
                batch = rest
            delay = self.started_at + tick * self.tick - time.time()
            if delay > 0:
                time.sleep(delay)
        self.finished_at = time.time()

    def _put(self, request: list[dict]) -> None:
        while request:
            now = time.time()
            for event in request:
                event["data"]["sent_at"] = now
            records = [{"Data": json.dumps(e).encode(), "PartitionKey": e["transaction_id"]} for e in request]
            response = self.client.put_records(StreamName=self.stream, Records=records)
            self.requests += 1
            request = [e for e, r in zip(request, response["Records"], strict=True) if "ErrorCode" in r]


# --- processes ----------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return found


def proc_status(pid: int, key: str) -> int:
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process on the machine: pid -> (command name, CPU seconds so far, its reaped children's included)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        found[int(entry)] = (name, sum(int(v) for v in fields[11:15]) / CLOCK_TICKS)
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Managed:
    """A started process (in its own process group, so its children are stopped with it)."""

    registry: list[Managed] = []

    def __init__(self, name: str, command: list[str], *, env: dict, log: Path):
        self.name, self.log = name, log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )
        Managed.registry.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return [self.pid, *children(self.pid)]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        # Children that outlived their parent (they should not) are stopped with the group.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._out.close()
        if self in Managed.registry:
            Managed.registry.remove(self)
        return self.process.returncode

    @classmethod
    def stop_all(cls) -> None:
        for managed in list(cls.registry):
            managed.stop(timeout=10)


def ping_worker(broker: str, name: str, timeout: float = 60.0) -> None:
    from celery import Celery

    app = Celery(broker=broker)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if app.control.ping(destination=[name], timeout=0.5):
                return
        raise RuntimeError(f"worker {name} did not answer within {timeout:.0f}s")
    finally:
        app.close()


# --- PostgreSQL ---------------------------------------------------------------------------------
class Listener(threading.Thread):
    """LISTENs for the trigger's notifications and notes when each event id arrived (= committed)."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("LISTEN bench_decided")
        self.seen: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for notify in self.conn.notifies(timeout=0.2):
                now = time.time()
                for value in notify.payload.split(","):
                    self.seen.setdefault(int(value), now)

    def wait_for(self, count: int, *, timeout: float, progress: str = "") -> bool:
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 10
        while len(self.seen) < count:
            if time.monotonic() > deadline:
                return False
            if progress and time.monotonic() > next_report:
                print(f"    {progress}: {len(self.seen)} of {count} applied", flush=True)
                next_report += 10
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.conn.close()


def backend_pids(admin_dsn: str, database: str) -> list[int]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchall()
    return [row[0] for row in rows]


@dataclass
class CpuMeter:
    """CPU seconds per component between ``start`` and ``stop``."""

    admin_dsn: str
    database: str
    components: dict[str, object]  # name -> Managed, list of Managed, or pid
    before: dict = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)

    def _pids(self) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {}
        for name, value in self.components.items():
            items = value if isinstance(value, list) else [value]
            pids[name] = [p for item in items for p in (item.pids() if isinstance(item, Managed) else [item])]
        pids["postgres"] = backend_pids(self.admin_dsn, self.database)
        return pids

    def _sample(self) -> dict:
        return {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in self._pids().items()}

    def start(self) -> None:
        self.before = self._sample()
        self.everything_before = all_processes()
        self.machine_before = machine_busy()
        self.wall_before = time.monotonic()

    def stop(self) -> None:
        after = self._sample()
        everything = all_processes()
        for name, values in after.items():
            self.result[name] = sum(v - self.before.get(name, {}).get(pid, 0.0) for pid, v in values.items())
        busy, total = machine_busy()
        self.machine_share = (busy - self.machine_before[0]) / max(1, total - self.machine_before[1])
        self.wall = time.monotonic() - self.wall_before
        # Everything else that ran meanwhile (other people's tests, PostgreSQL's own background
        # processes, Redis, this script), by command name.
        ours = {pid for values in after.values() for pid in values}
        self.others: dict[str, float] = defaultdict(float)
        for pid, (name, cpu) in everything.items():
            if pid in ours:
                continue
            label = "this script" if pid == os.getpid() else name
            self.others[label] += cpu - self.everything_before.get(pid, (name, 0.0))[1]


def reset_database(admin_dsn: str, name: str, env: dict) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PYTHON, "manage.py", "import_models", "examples/order-fulfilment.yaml"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(TRIGGER_SQL)


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        conn.execute(f"VACUUM ANALYZE {TABLES}")


def inbox_times(dsn: str, prefix: str) -> list[tuple[int, float, float, float | None, str]]:
    """(id, sent_at, received_at, processed_at, status) of the events whose id starts with prefix."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            """SELECT id, (envelope->'data'->>'sent_at')::float8, extract(epoch FROM received_at)::float8,
                      extract(epoch FROM processed_at)::float8, status
               FROM tracking_inboxevent WHERE event_id LIKE %s""",
            [prefix + "-%"],
        ).fetchall()


def database_writes(dsn: str) -> tuple[int, dict[str, tuple[int, int, int]]]:
    """The cluster's WAL position in bytes, and rows (inserted, updated, of those HOT) per table of
    this database, as PostgreSQL's statistics count them (others' writes to the cluster count in
    the WAL figure, which is why other processes' share of the machine is printed)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables").fetchall()
    return int(wal), {name: (ins, upd, hot) for name, ins, upd, hot in rows}


def writes_per_event(before, after, events: int) -> dict:
    """WAL bytes and rows written per event between two ``database_writes`` readings."""
    (wal0, rows0), (wal1, rows1) = before, after
    changed = {
        name: tuple(b - a for a, b in zip(rows0.get(name, (0, 0, 0)), counts, strict=True))
        for name, counts in rows1.items()
    }
    return {
        "wal_bytes": (wal1 - wal0) / events,
        "rows": {name: (ins + upd) / events for name, (ins, upd, _hot) in changed.items() if ins + upd},
        "hot_share": {name: hot / upd for name, (_ins, upd, hot) in changed.items() if upd},
    }


# --- the benchmark ------------------------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def first_read(log: Path) -> float | None:
    """The start time of the first GetRecords call that returned records, from a JSON log."""
    first = None
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "read" and entry.get("records") and "started" in entry:
            first = entry["started"] if first is None else min(first, entry["started"])
    return first


class Profiler:
    """py-spy sampling the given processes (and their pool children) while a phase runs.

    ``py-spy record --format raw`` writes collapsed stacks; ``summary`` turns them into the share
    of CPU samples spent inside the functions that matter here (inclusive) and the hottest leaves.
    """

    def __init__(self, outdir: Path, name: str, pids: list[int], *, subprocesses: bool):
        self.paths = []
        self.processes = []
        executable = Path(PYTHON).with_name("py-spy")
        for pid in pids:
            path = outdir / f"{name}-{pid}.txt"
            command = [str(executable), "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                       "--output", str(path), "--nonblocking"]  # fmt: skip
            if subprocesses:
                command.append("--subprocesses")
            self.paths.append(path)
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            )

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stacks(self) -> list[tuple[list[str], int]]:
        result = []
        for path in self.paths:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    result.append((stack.split(";"), int(count)))
        return result


def profile_summary(stacks: list[tuple[list[str], int]], top: int = 25) -> list[str]:
    """Inclusive share of samples per function (each counted once per stack), hottest first."""
    total = sum(count for _, count in stacks)
    inclusive: dict[str, int] = defaultdict(int)
    leaf: dict[str, int] = defaultdict(int)
    for frames, count in stacks:
        names = []
        for frame in frames:
            name = frame.split(" (")[0]
            location = frame.split(" (")[1].rstrip(")") if " (" in frame else ""
            source = location.split(":")[0]
            for marker in ("/site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
                if marker in source:
                    source = source.split(marker, 1)[1]
            names.append(f"{name} ({source})")
        for name in set(names):
            inclusive[name] += count
        if names:
            leaf[names[-1]] += count
    lines = [f"{total} samples"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in sorted(inclusive.items(), key=lambda x: -x[1])[:top]]
    lines.append("  hottest leaves:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in sorted(leaf.items(), key=lambda x: -x[1])[:12]]
    return lines


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args, self.workdir = args, workdir
        self.admin_dsn = f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/postgres"
        self.dsn = f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.database}"
        self.naive_dsn = f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/{args.naive_database}"
        self.broker = f"redis://{args.redis_host}:6379/{args.redis_db}"
        base = {
            **os.environ,
            "CELERY_BROKER_URL": self.broker,
            "SECRET_KEY": "kinesis-bench-only",
            "DEBUG": "False",
            "LOG_LEVEL": "WARNING",
            "STATUSTRACKER_VAR_DIR": str(ROOT / "var" / "bench-kinesis"),
            "STATUSTRACKER_TASK_BATCH_SIZE": str(args.task_batch_size),
            "CELERY_PREFETCH_MULTIPLIER": str(args.prefetch),
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
        }
        if args.subscribe_all:
            base["CELERY_DEFAULT_QUEUE"] = DELIVERY_QUEUE  # deliveries wait there; apply tasks use the model's queue
        self.env = {**base, "DATABASE_URL": self.dsn.replace("postgresql://", "postgres://")}
        self.naive_env = {**base, "DATABASE_URL": self.naive_dsn.replace("postgresql://", "postgres://")}
        self.kinesalite: Kinesalite | None = None
        self.host = socket.gethostname()

    # set-up ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        print("preparing databases, kinesalite and the streams", flush=True)
        reset_database(self.admin_dsn, self.args.database, self.env)
        reset_database(self.admin_dsn, self.args.naive_database, self.naive_env)
        if self.args.subscribe_all:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute("UPDATE models_registry_statusmodel SET queue = %s", [PIPELINE_QUEUE])
        self.kinesalite = Kinesalite(log_path=self.workdir / "kinesalite.log").start()
        self.client = self.kinesalite.client()
        self.backlog = order_events("T", self.args.events, seed=1)
        stream_create(self.client, name="bench-backlog", shards=self.args.shards)
        self.publish_rate = publish(self.client, "bench-backlog", self.backlog)
        print(f"  {len(self.backlog)} events on bench-backlog ({self.publish_rate:.0f} events/s put)", flush=True)
        naive_events = [json.loads(json.dumps(e)) for e in self.backlog[: self.args.naive_events]]
        stream_create(self.client, name="bench-naive", shards=self.args.shards)
        publish(self.client, "bench-naive", naive_events)
        print(f"  the first {len(naive_events)} of them on bench-naive", flush=True)

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis(host=self.args.redis_host, db=int(self.args.redis_db))
        client.flushdb()
        client.close()

    # processes -------------------------------------------------------------------------------------
    def start_workers(self, name: str, *, env: dict, queue: str, include: str | None = None) -> Managed:
        command = [
            PYTHON, "-m", "celery", "-A", "statustracker", "worker", "-l", "warning",
            "-c", str(self.args.concurrency), "-Q", queue, "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        if include:
            command += ["-I", include]
        worker = Managed(name, command, env=env, log=self.workdir / f"{name}.log")
        ping_worker(self.broker, f"{name}@{self.host}")
        return worker

    def start_consumers(self, stream: str, tag: str) -> list[Managed]:
        consumers = []
        for number in range(1, self.args.consumers + 1):
            worker_id = f"bench-{tag}-c{number}"
            command = [
                PYTHON, "manage.py", "consume_kinesis", "--stream", stream,
                "--endpoint-url", self.kinesalite.endpoint_url, "--worker-id", worker_id,
                "--batch-size", str(self.args.batch_size), "--lease-duration", str(self.args.lease_duration),
                "--log-format", "json", "--log-level", "DEBUG", "--progress-interval", "5",
            ]  # fmt: skip
            consumers.append(Managed(worker_id, command, env=self.env, log=self.workdir / f"{worker_id}.log"))
        return consumers

    @staticmethod
    def wait_started(consumers: list[Managed], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for consumer in consumers:
            while '"event": "started"' not in consumer.log.read_text(errors="replace"):
                if consumer.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{consumer.name} did not start: {consumer.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def wait_balanced(self, stream: str, timeout: float = 60.0) -> None:
        """Until every shard of the stream has a lease held by one of the consumers."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT owner, count(*) FROM tracking_shardlease WHERE stream = %s AND owner <> '' GROUP BY owner",
                    [stream],
                ).fetchall()
                held = sum(count for _, count in rows)
                if held == self.args.shards and (len(rows) == min(self.args.consumers, self.args.shards)):
                    return
                time.sleep(0.1)
        raise RuntimeError(f"the consumers did not share the {self.args.shards} shards of {stream} in time")

    # phases ----------------------------------------------------------------------------------------
    def throughput(self, run: int, workers: Managed) -> dict:
        listener = Listener(self.dsn)
        listener.start()
        consumers = self.start_consumers("bench-backlog", f"r{run}t")
        try:
            meter = CpuMeter(
                self.admin_dsn,
                self.args.database,
                {"consumer": consumers, "workers": workers, "kinesalite": self.kinesalite.process.pid},
            )
            self.wait_started(consumers)
            profilers = []
            if self.args.profile:
                outdir = Path(self.args.profile)
                outdir.mkdir(parents=True, exist_ok=True)
                profilers = [
                    Profiler(outdir, f"r{run}-consumer", [c.pid for c in consumers], subprocesses=False),
                    Profiler(outdir, f"r{run}-workers", [workers.pid], subprocesses=True),
                ]
            writes_before = database_writes(self.dsn)
            meter.start()
            done = listener.wait_for(len(self.backlog), timeout=self.args.timeout, progress="throughput")
            meter.stop()
            time.sleep(1.5)  # workers' statistics reach the server within a second of their commit
            writes = writes_per_event(writes_before, database_writes(self.dsn), len(self.backlog))
            for profiler in profilers:
                profiler.stop()
            for label, profiler in zip(("consumer", "workers"), profilers, strict=False):
                print(f"  profile of the {label} (py-spy, CPU samples):", flush=True)
                for line in profile_summary(profiler.stacks()):
                    print("    " + line, flush=True)
            rss = max(proc_status(c.pid, "VmHWM") for c in consumers)
        finally:
            for consumer in consumers:
                consumer.stop()
            listener.close()
        if not done:
            raise RuntimeError(f"only {len(listener.seen)} of {len(self.backlog)} events applied in time")
        start = min(t for t in (first_read(c.log) for c in consumers) if t is not None)
        end = max(listener.seen.values())
        rows = inbox_times(self.dsn, "T")
        last_received = max(r[2] for r in rows)
        statuses = defaultdict(int)
        for row in rows:
            statuses[row[4]] += 1
        elapsed = end - start
        return {
            "events": len(self.backlog),
            "seconds": elapsed,
            "rate": len(self.backlog) / elapsed,
            "ingest_rate": len(self.backlog) / (last_received - start),
            "tail": end - last_received,
            "statuses": dict(statuses),
            "consumer_hwm_kb": rss,
            "writes": writes,
            "cpu": meter.result,
            "machine_share": meter.machine_share,
            "others": dict(meter.others),
            "wall": meter.wall,
        }

    def latency(self, run: int, workers: Managed) -> dict:
        stream = f"bench-live-{run}"
        stream_create(self.client, name=stream, shards=self.args.shards)
        events = order_events(f"L{run}", int(self.args.rate * self.args.latency_seconds), seed=100 + run)
        listener = Listener(self.dsn)
        listener.start()
        consumers = self.start_consumers(stream, f"r{run}l")
        try:
            self.wait_started(consumers)
            self.wait_balanced(stream)
            meter = CpuMeter(
                self.admin_dsn,
                self.args.database,
                {"consumer": consumers, "workers": workers, "kinesalite": self.kinesalite.process.pid},
            )
            meter.start()
            producer = RateProducer(self.client, stream, events, self.args.rate)
            producer.start()
            producer.join()
            if producer.error:
                raise producer.error
            done = listener.wait_for(len(events), timeout=self.args.timeout, progress="latency")
            meter.stop()
            rss = max(proc_status(c.pid, "VmHWM") for c in consumers)
        finally:
            for consumer in consumers:
                consumer.stop()
            listener.close()
            stream_delete(self.client, name=stream)
        if not done:
            raise RuntimeError(f"only {len(listener.seen)} of {len(events)} latency events applied in time")
        rows = inbox_times(self.dsn, f"L{run}")
        warmup_end = producer.started_at + self.args.warmup
        measured = [r for r in rows if r[1] >= warmup_end]
        applied = [r[3] - r[1] for r in measured]
        visible = [listener.seen[r[0]] - r[1] for r in measured]
        return {
            "events": len(events),
            "offered_rate": len(events) / (producer.finished_at - producer.started_at),
            "measured": len(measured),
            "p50": percentile(applied, 0.50),
            "p95": percentile(applied, 0.95),
            "p99": percentile(applied, 0.99),
            "max": max(applied),
            "visible_p50": percentile(visible, 0.50),
            "visible_p95": percentile(visible, 0.95),
            "visible_max": max(visible),
            "to_inbox_p50": percentile([r[2] - r[1] for r in measured], 0.50),
            "to_inbox_p95": percentile([r[2] - r[1] for r in measured], 0.95),
            "queued_p50": percentile([r[3] - r[2] for r in measured], 0.50),
            "queued_p95": percentile([r[3] - r[2] for r in measured], 0.95),
            "commit_p50": percentile([listener.seen[r[0]] - r[3] for r in measured], 0.50),
            "commit_p95": percentile([listener.seen[r[0]] - r[3] for r in measured], 0.95),
            "consumer_hwm_kb": rss,
            "cpu": meter.result,
            "machine_share": meter.machine_share,
            "others": dict(meter.others),
            "wall": meter.wall,
        }

    def naive(self, run: int) -> dict:
        count = min(self.args.naive_events, len(self.backlog))
        workers = self.start_workers(
            f"bench-naive-{run}", env=self.naive_env, queue=NAIVE_QUEUE, include="bench.naive_apply"
        )
        listener = Listener(self.naive_dsn)
        listener.start()
        reader = None
        try:
            reader = Managed(
                f"naive-reader-{run}",
                [PYTHON, "-m", "bench.naive_apply", "--stream", "bench-naive",
                 "--endpoint-url", self.kinesalite.endpoint_url, "--batch-size", str(self.args.batch_size)],
                env=self.naive_env,
                log=self.workdir / f"naive-reader-{run}.log",
            )  # fmt: skip
            meter = CpuMeter(
                self.admin_dsn,
                self.args.naive_database,
                {"reader": reader, "workers": workers, "kinesalite": self.kinesalite.process.pid},
            )
            profiler = None
            if self.args.profile:
                profiler = Profiler(Path(self.args.profile), f"r{run}-naive-workers", [workers.pid], subprocesses=True)
            meter.start()
            done = listener.wait_for(count, timeout=self.args.timeout, progress="naive")
            meter.stop()
            if profiler is not None:
                profiler.stop()
                print("  profile of the naive workers (py-spy, CPU samples):", flush=True)
                for line in profile_summary(profiler.stacks()):
                    print("    " + line, flush=True)
        finally:
            if reader is not None:
                reader.stop()
            workers.stop()
            listener.close()
        if not done:
            raise RuntimeError(f"naive: only {len(listener.seen)} of {count} events applied in time")
        start = first_read(reader.log)
        end = max(listener.seen.values())
        statuses = defaultdict(int)
        for row in inbox_times(self.naive_dsn, "T"):
            statuses[row[4]] += 1
        return {
            "events": count,
            "seconds": end - start,
            "rate": count / (end - start),
            "statuses": dict(statuses),
            "cpu": meter.result,
            "machine_share": meter.machine_share,
            "others": dict(meter.others),
            "wall": meter.wall,
        }

    def subscribe_all(self, on: bool) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE tracking_webhooksubscription, tracking_notification RESTART IDENTITY CASCADE")
            if on:
                kinds = [k for k in self.args.subscription_kinds.split(",") if k]
                conn.execute(SUBSCRIBE_ALL_SQL, [json.dumps(kinds), MODEL])

    def context_index(self, on: bool) -> None:
        """With ``--compare context-index``: the GIN index on instances' context, or none."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(CONTEXT_INDEX_SQL if on else "DROP INDEX IF EXISTS instance_context")

    def variant(self, on: bool) -> None:
        if self.args.compare == "context-index":
            self.subscribe_all(False)
            self.context_index(on)
        else:
            self.context_index(True)
            self.subscribe_all(on)

    def notifications(self) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM tracking_notification").fetchone()[0]

    def run_side_by_side(self, run: int) -> dict:
        """The throughput phase without and with a subscription to every change, the order alternating."""
        print(f"run {run}", flush=True)
        result = {}
        order = (False, True) if run % 2 else (True, False)
        for subscribed in order:
            label = "subscribed" if subscribed else "throughput"
            truncate(self.dsn)
            self.variant(subscribed)
            self.flush_redis()
            workers = self.start_workers(f"bench-pipe-{run}-{label}", env=self.env, queue=PIPELINE_QUEUE)
            try:
                result[label] = t = self.throughput(run, workers)
            finally:
                workers.stop()
            t["notifications"] = self.notifications()
            print(
                f"  {VARIANTS[self.args.compare][subscribed]}: "
                f"{t['events']} events in {t['seconds']:.1f} s = {t['rate']:.0f} events/s "
                f"(into the inbox {t['ingest_rate']:.0f}/s, apply tail {t['tail']:.2f} s), "
                f"{t['notifications']} notifications written, {t['statuses']}",
                flush=True,
            )
        return result

    def run(self, run: int) -> dict:
        if self.args.subscribe_all:
            return self.run_side_by_side(run)
        print(f"run {run}", flush=True)
        truncate(self.dsn)
        truncate(self.naive_dsn)
        self.flush_redis()
        result = {}
        workers = self.start_workers(f"bench-pipe-{run}", env=self.env, queue=PIPELINE_QUEUE)
        try:
            result["throughput"] = self.throughput(run, workers)
            t = result["throughput"]
            print(
                f"  throughput: {t['events']} events in {t['seconds']:.1f} s = {t['rate']:.0f} events/s "
                f"(into the inbox {t['ingest_rate']:.0f}/s, apply tail {t['tail']:.2f} s), {t['statuses']}",
                flush=True,
            )
            if self.args.latency_seconds > 0:
                result["latency"] = self.latency(run, workers)
                lat = result["latency"]
                print(
                    f"  latency at {lat['offered_rate']:.0f} events/s: p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s, "
                    f"max {lat['max']:.3f} s (committed: p50 {lat['visible_p50']:.3f} s, p95 {lat['visible_p95']:.3f} s)",
                    flush=True,
                )
        finally:
            workers.stop()
        if self.args.naive_events > 0:
            result["naive"] = self.naive(run)
            n = result["naive"]
            print(
                f"  naive: {n['events']} events in {n['seconds']:.1f} s = {n['rate']:.0f} events/s, {n['statuses']}",
                flush=True,
            )
        return result

    def close(self) -> None:
        Managed.stop_all()
        if self.kinesalite is not None:
            self.kinesalite.stop()


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"  # NaN: the component is not part of that design


def report_side_by_side(runs: list[dict], compare: str = "subscription") -> list[str]:
    lines = ["| figure | " + " | ".join(f"run {i}" for i in range(1, len(runs) + 1)) + " | median |"]
    lines.append("|" + " --- |" * (len(runs) + 2))

    def row(name: str, values: list, fmt: str) -> None:
        lines.append(
            f"| {name} | " + " | ".join(format(v, fmt) for v in values) + f" | {format(median(values), fmt)} |"
        )

    plain = [r["throughput"] for r in runs]
    subscribed = [r["subscribed"] for r in runs]
    off, on = VARIANTS[compare][False], VARIANTS[compare][True]
    row(f"events/s {off}", [x["rate"] for x in plain], ".0f")
    row(f"events/s {on}", [x["rate"] for x in subscribed], ".0f")
    row("change, %", [100 * (b["rate"] / a["rate"] - 1) for a, b in zip(plain, subscribed, strict=True)], "+.1f")
    row("notifications written per event", [x["notifications"] / x["events"] for x in subscribed], ".2f")
    for name in sorted({n for x in plain + subscribed for n in x["cpu"]}):
        row(
            f"{name} CPU per event, µs, without",
            [x["cpu"].get(name, 0) * 1e6 / x["events"] for x in plain],
            ".0f",
        )
        row(f"  {on}", [x["cpu"].get(name, 0) * 1e6 / x["events"] for x in subscribed], ".0f")
    row("machine CPU busy without, %", [100 * x["machine_share"] for x in plain], ".0f")
    row("machine CPU busy with, %", [100 * x["machine_share"] for x in subscribed], ".0f")
    for number, x in enumerate(plain + subscribed, start=1):
        capacity = x["wall"] * (os.cpu_count() or 1)
        label = f"run {(number - 1) % len(runs) + 1} {'without' if number <= len(runs) else 'with'}"
        lines.append(f"- {label}: other processes used {sum(x['others'].values()) / capacity:.0%} of the machine")
    return lines


def report(args, runs: list[dict], bench: Bench, load_before: tuple, load_after: tuple) -> str:
    lines = []
    out = lines.append
    mem = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            key, value = line.split(":", 1)
            mem[key] = int(value.split()[0])
    out(
        f"machine: {os.cpu_count()} CPUs, {mem['MemTotal'] / 1048576:.1f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    out(
        f"load average before: {' '.join(f'{v:.2f}' for v in load_before)}; after: {' '.join(f'{v:.2f}' for v in load_after)}"
    )
    out(
        f"settings: {args.shards} shards, {args.consumers} consumer process(es), consumer batch {args.batch_size}, "
        f"{args.concurrency} worker processes, task batch {args.task_batch_size} instances, prefetch {args.prefetch}"
    )
    out("")
    if args.subscribe_all:
        lines.extend(report_side_by_side(runs, args.compare))
        return "\n".join(lines)
    header = "| figure | " + " | ".join(f"run {i}" for i in range(1, len(runs) + 1)) + " | median | target |"
    out(header)
    out("|" + " --- |" * (len(runs) + 3))

    def row(name: str, values: list, fmt: str, target: str = "") -> None:
        cells = [format(v, fmt) if v is not None else "-" for v in values]
        out(f"| {name} | " + " | ".join(cells) + f" | {format(median(values), fmt)} | {target} |")

    t = [r["throughput"] for r in runs]
    row("pipeline events/s (first read -> last commit)", [x["rate"] for x in t], ".0f", ">= 5,000")
    row("  into the inbox, events/s", [x["ingest_rate"] for x in t], ".0f")
    row("  apply tail after the last insert, s", [x["tail"] for x in t], ".2f")
    if all("naive" in r for r in runs):
        n = [r["naive"] for r in runs]
        row("naive events/s (one task per record)", [x["rate"] for x in n], ".0f")
        row("pipeline / naive", [a["rate"] / b["rate"] for a, b in zip(t, n, strict=True)], ".1f", ">= 10")
    if all("latency" in r for r in runs):
        lat = [r["latency"] for r in runs]
        row("offered events/s", [x["offered_rate"] for x in lat], ".0f", "1,000")
        row("latency p50, s (put -> processed_at)", [x["p50"] for x in lat], ".3f")
        row("latency p95, s (put -> processed_at)", [x["p95"] for x in lat], ".3f", "< 1")
        row("latency p99, s", [x["p99"] for x in lat], ".3f")
        row("latency max, s", [x["max"] for x in lat], ".3f")
        row("latency p50, s (put -> commit)", [x["visible_p50"] for x in lat], ".3f")
        row("latency p95, s (put -> commit)", [x["visible_p95"] for x in lat], ".3f")
        row("  put -> stored in the inbox, p50, s", [x["to_inbox_p50"] for x in lat], ".3f")
        row("  put -> stored in the inbox, p95, s", [x["to_inbox_p95"] for x in lat], ".3f")
        row("  stored -> apply starts, p50, s", [x["queued_p50"] for x in lat], ".3f")
        row("  stored -> apply starts, p95, s", [x["queued_p95"] for x in lat], ".3f")
        row("  apply starts -> commit, p50, s", [x["commit_p50"] for x in lat], ".3f")
        row("  apply starts -> commit, p95, s", [x["commit_p95"] for x in lat], ".3f")
    rss = [max(r["throughput"]["consumer_hwm_kb"], r.get("latency", {}).get("consumer_hwm_kb", 0)) / 1024 for r in runs]
    row("consumer peak RSS (VmHWM), MB", rss, ".0f", "< 150")
    row("machine CPU busy during throughput, %", [100 * x["machine_share"] for x in t], ".0f")
    row("WAL written per event, bytes", [x["writes"]["wal_bytes"] for x in t], ".0f")
    for table in sorted({name for x in t for name in x["writes"]["rows"]}):
        row(f"  {table} rows written per event", [x["writes"]["rows"].get(table, 0) for x in t], ".2f")
    out("")
    out("CPU time per event during the throughput phase (µs of CPU per event, median over runs):")
    out("")
    names = sorted({name for x in t for name in x["cpu"]})
    out("| component | pipeline | " + ("naive |" if all("naive" in r for r in runs) else ""))
    out("| --- | --- |" + (" --- |" if all("naive" in r for r in runs) else ""))
    naive_names = sorted({name for r in runs if "naive" in r for name in r["naive"]["cpu"]})
    for name in sorted(set(names) | set(naive_names)):
        pipe = median([x["cpu"].get(name) * 1e6 / x["events"] if name in x["cpu"] else None for x in t])
        cells = f"| {name} | {_cell(pipe)} |"
        if all("naive" in r for r in runs):
            nv = median(
                [
                    r["naive"]["cpu"][name] * 1e6 / r["naive"]["events"] if name in r["naive"]["cpu"] else None
                    for r in runs
                ]
            )
            cells += f" {_cell(nv)} |"
        out(cells)
    out("")
    out("Other processes during the throughput phase (CPU seconds, and share of the machine's 2-core capacity):")
    out("")
    for number, x in enumerate(t, start=1):
        capacity = x["wall"] * (os.cpu_count() or 1)
        top = sorted(x["others"].items(), key=lambda item: -item[1])[:6]
        listed = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in top if cpu >= 0.05)
        out(f"- run {number}: {sum(x['others'].values()) / capacity:.0%} of the machine ({listed})")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered events/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="length of the latency phase; 0: skip")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of the latency phase left out")
    parser.add_argument("--naive-events", type=int, default=5_000, help="events through the naive design; 0: skip")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2, help="consume_kinesis processes (one per core)")
    parser.add_argument("--batch-size", type=int, default=2000, help="consume_kinesis --batch-size")
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=3.0,
        help="consume_kinesis --lease-duration; short, so that the consumers share the shards within "
        "a second or two of a short run (with the default 10 s it takes 5-10 s)",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--task-batch-size", type=int, default=500, help="STATUSTRACKER_TASK_BATCH_SIZE")
    parser.add_argument("--prefetch", type=int, default=4, help="CELERY_PREFETCH_MULTIPLIER")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for one phase to finish")
    parser.add_argument("--database", default="bench_kinesis")
    parser.add_argument("--naive-database", default="bench_kinesis_naive")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-db", default="5")
    parser.add_argument(
        "--subscribe-all",
        action="store_true",
        help="measure the throughput phase without and with a webhook subscription to every change, side by "
        "side in each run (no latency or naive phase)",
    )
    parser.add_argument(
        "--subscription-kinds",
        default="transition",
        help="with --subscribe-all: the kinds the subscription matches, comma-separated (default: every "
        'transition, as the issue\'s target says); "" for every change (transitions, milestones, outcomes…)',
    )
    parser.add_argument(
        "--compare",
        choices=sorted(VARIANTS),
        default="subscription",
        help="with --subscribe-all: what the two sides differ in: a subscription (default), or the GIN index "
        "on instances' context (tracking/migrations/0008), without and with it",
    )
    parser.add_argument("--json", help="also write every figure of every run to this file")
    parser.add_argument("--logs", metavar="DIR", help="keep the logs of every process here (default: deleted)")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample the consumers and the workers with py-spy in the throughput phase, and the naive workers",
    )
    return parser.parse_args()


def _interrupted(signum, frame) -> None:
    # SIGTERM ends the run like Ctrl-C does, so that every process started is stopped.
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    started = time.monotonic()
    print("command: " + " ".join([Path(PYTHON).name, *sys.argv]), flush=True)
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(prefix="kinesis-bench-") as tmp:
        workdir = Path(args.logs or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(args, workdir)
        runs = []
        try:
            bench.prepare()
            for number in range(1, args.runs + 1):
                runs.append(bench.run(number))
        finally:
            bench.close()
    load_after = os.getloadavg()
    print(f"\nfinished in {time.monotonic() - started:.0f} s\n")
    print(report(args, runs, bench, load_before, load_after))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
