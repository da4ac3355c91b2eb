"""The pipeline across several hosts on one machine, and what it does when two of them drop off the network.

Not a test: it prints figures (tests/scaleout/test_multihost.py runs a short version and checks
them). Hosts are network namespaces on a bridge (bench/hosts.py), each with its own address:

    data         10.231.0.2    PostgreSQL (a throwaway cluster made for the run), Redis, Celery beat
    aws          10.231.0.3    kinesalite, the Kinesis emulator
    consumer-1   10.231.0.11   manage.py consume_kinesis
    consumer-2   10.231.0.12   manage.py consume_kinesis
    worker-1     10.231.0.21   celery -A statustracker worker
    worker-2     10.231.0.22   celery -A statustracker worker

The machine itself (10.231.0.1) publishes and watches. Every host has its own
STATUSTRACKER_VAR_DIR, so nothing passes between hosts through files; the broker is the Redis on
the data host.

A run: the consumers share a ``--shards`` stream through their leases (two shards each); a
producer puts ``--events`` order events (interleaved orders, some events twice, some early:
tests/order_stream.py) on it. When ``--cut-at`` of them (40 %) are applied, the links of worker-1
and consumer-1 are cut (``ip link set ... down`` at the bridge), each at a moment when it has a
database transaction open: a task holding its instances' row locks, a batch of records being
stored before its checkpoint. Nothing tells the other hosts: it is a host losing power. Then:

- consumer-2 takes consumer-1's shards once their leases expire, and reads on from their checkpoints;
- the tasks worker-1 had received but not acknowledged come back to the queue after the broker's
  visibility timeout (``--visibility-timeout``; CELERY_VISIBILITY_TIMEOUT) and worker-2 runs them;
  beat's sweep (``--sweep-after``, ``--sweep-interval``) sends what no message brings back;
- when every event published so far is applied, the links come back (consumer-1's already after
  ``--consumer-back-after`` seconds, if given: while its transaction may still be open). The cut
  processes find their leases and connections gone; the last ``--tail`` share of the events is
  published after that, once consumer-1 has won shards back by a hand-over.

At the end every event is checked against an independent replay of the spec
(tests/reference_replay.py): states, contexts, each event's outcome, each instance's history (a
transition applied twice would show), duplicate counts. Figures: events/s across the hosts, the
hand-over after the cut, when the database dropped the cut hosts' sessions, the time until the cut
worker's tasks were done again, events lost, transitions applied twice.

Needs root, iproute2, PostgreSQL 15's binaries (``--pg-bin``), redis-server and node with
kinesalite installed (``npm install``). Everything it starts runs in its namespaces, and all of it,
the namespaces, the bridge and the cluster are removed at the end, also on Ctrl-C or SIGTERM
(``python bench/hosts.py --clean`` after a SIGKILL). Logs are kept with ``--keep``.

    flock /tmp/bench.lock .venv/bin/python bench/multihost.py             # as root; about 2 minutes
    flock /tmp/bench.lock .venv/bin/python bench/multihost.py --events 6000 --lease-seconds 4 --keep
    flock /tmp/bench.lock .venv/bin/python bench/multihost.py --visibility-timeout 3600
"""

from __future__ import annotations

import argparse
import base64
import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hosts import HostNetwork  # noqa: E402
from tests.json_lines import json_lines  # noqa: E402
from tests.order_stream import order_events  # noqa: E402
from tests.reference_replay import replay  # noqa: E402
from tracking.arrival.kinesis.emulator import LOCAL_CREDENTIALS, local_client  # noqa: E402
from tracking.arrival.kinesis.producer import records_publish  # noqa: E402
from tracking.arrival.kinesis.streams import stream_create  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
HOSTS = {"data": 2, "aws": 3, "consumer-1": 11, "consumer-2": 12, "worker-1": 21, "worker-2": 22}
CONSUMERS = ("consumer-1", "consumer-2")
WORKERS = ("worker-1", "worker-2")
CUT_CONSUMER, CUT_WORKER = "consumer-1", "worker-1"
DATABASE = "statustracker"
KINESIS_PORT = 4567
MODEL_FILE = ROOT / "examples" / "order-fulfilment.yaml"
STREAM = "orders"
APPLY_TASK = "tracking.tasks.apply_pending"


@dataclass
class Options:
    events: int = 30_000
    shards: int = 4
    rate: float = 0.0  # events/s offered by the producer; 0: as fast as it can
    cut_at: float = 0.4  # share of the events applied when the links are cut
    tail: float = 0.1  # share of the events published once the cut hosts are back
    lease_seconds: float = 10.0
    visibility_timeout: int = 15
    sweep_after: int = 60  # STATUSTRACKER_SWEEP_AFTER_SECONDS
    sweep_interval: int = 30  # beat's SWEEP_INTERVAL_SECONDS
    consumer_back_after: float = 0.0  # seconds after the cut; 0: at the end, with the worker
    concurrency: int = 1
    batch_size: int = 500
    timeout: float = 300.0
    seed: int = 11
    pg_bin: Path = Path("/usr/lib/postgresql/15/bin")
    keep: bool = False
    quiet: bool = False


@dataclass
class Figures:
    """What a run found; times in seconds after the cut."""

    hosts: dict[str, str] = field(default_factory=dict)
    events_published: int = 0
    events_distinct: int = 0
    events_stored: int = 0
    events_lost: int = 0
    duplicates_counted: int = 0
    duplicates_expected: int = 0
    transitions_applied_twice: int = 0
    replay_differences: list = field(default_factory=list)
    pending_at_end: int = 0
    dead_letters: int = 0
    events_per_second_all_hosts: float = 0.0
    events_per_second_after_cut: float = 0.0
    cut_consumer_shards: list[str] = field(default_factory=list)
    cut_consumer_in_transaction: bool = False
    cut_worker_in_transaction: bool = False
    shards_taken_by_survivor: list[str] = field(default_factory=list)
    handover_seconds: float | None = None
    storing_resumed_seconds: float | None = None
    sessions_dropped_seconds: dict[str, float | None] = field(default_factory=dict)
    sessions_blocked_by_cut_hosts: int = 0
    cut_worker_tasks: list[str] = field(default_factory=list)
    tasks_redone: list[str] = field(default_factory=list)
    tasks_redone_seconds: float | None = None
    held_events_applied_seconds: float | None = None
    all_applied_seconds: float | None = None
    stored_before_cut_applied_seconds: float | None = None
    unacknowledged_at_end: int = 0
    messages_never_received: int = 0
    sweeps: list[tuple[float, int]] = field(default_factory=list)  # (seconds after the cut, instances)
    consumer_back_seconds: float | None = None
    consumer_transaction_open_when_back: bool | None = None
    checkpoints_moved_back: list[str] = field(default_factory=list)
    rejoined_consumer_shards: list[str] = field(default_factory=list)
    rejoined_consumer_records: int = 0
    cut_consumer_after_return: list[str] = field(default_factory=list)
    cut_worker_after_return: list[str] = field(default_factory=list)
    cut_worker_back_seconds: float | None = None
    broker_url: str = ""
    broker_messages: int = 0
    filesystem_broker_dirs: list[str] = field(default_factory=list)
    consumer_logs: dict[str, Path] = field(default_factory=dict)

    def report(self, options: Options) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        dropped = ", ".join(f"{host} {seconds(value)}" for host, value in self.sessions_dropped_seconds.items())
        sweeps = ", ".join(f"{n} instances at {seconds(t)}" for t, n in self.sweeps) or "none"
        back = (
            f"{CUT_CONSUMER} back after {seconds(self.consumer_back_seconds)}, its transaction "
            f"{'still open on the server' if self.consumer_transaction_open_when_back else 'already gone'}"
            if self.consumer_back_seconds is not None
            else ""
        )
        lines = [
            "hosts: " + ", ".join(f"{name} {address}" for name, address in self.hosts.items()),
            f"stream {options.shards} shards; lease {options.lease_seconds:g} s; visibility timeout "
            f"{options.visibility_timeout} s; sweep after {options.sweep_after} s every {options.sweep_interval} s; "
            f"{options.concurrency} process(es) per worker host",
            f"events published {self.events_published} ({self.events_distinct} distinct, "
            f"{self.events_published - self.events_distinct} sent twice), stored {self.events_stored}",
            f"events/s across hosts: {self.events_per_second_all_hosts:.0f} with every host up (first stored -> cut); "
            f"{self.events_per_second_after_cut:.0f} from the cut until all published so far were applied",
            f"cut {CUT_CONSUMER} (shards {', '.join(self.cut_consumer_shards) or '-'}; a batch in hand: "
            f"{'yes' if self.cut_consumer_in_transaction else 'no'}) and {CUT_WORKER} (a task in hand: "
            f"{'yes' if self.cut_worker_in_transaction else 'no'})",
            f"shard hand-over: consumer-2 held {', '.join(self.shards_taken_by_survivor) or 'none'} "
            f"{seconds(self.handover_seconds)} after the cut; stored on them from {seconds(self.storing_resumed_seconds)}",
            f"database dropped the cut hosts' sessions: {dropped or '-'} (meanwhile up to "
            f"{self.sessions_blocked_by_cut_hosts} sessions waited for their locks)",
            f"tasks {CUT_WORKER} held: {len(self.cut_worker_tasks)}; run again by worker-2: {len(self.tasks_redone)}, "
            f"the last {seconds(self.tasks_redone_seconds)} after the cut; their events applied after "
            f"{seconds(self.held_events_applied_seconds)}",
            f"every event stored before the cut applied {seconds(self.stored_before_cut_applied_seconds)} after it, "
            f"every event published so far {seconds(self.all_applied_seconds)}; sweeps that re-enqueued instances "
            f"meanwhile: {sweeps}",
            f"events lost: {self.events_lost}; transitions applied twice: {self.transitions_applied_twice}; "
            f"duplicates counted {self.duplicates_counted} (expected {self.duplicates_expected}); "
            f"pending at the end: {self.pending_at_end}; dead letters: {self.dead_letters}",
            f"differences from the replay: {len(self.replay_differences)}"
            + (f" (first: {self.replay_differences[:3]})" if self.replay_differences else ""),
            *([back] if back else []),
            f"after the cut hosts came back: {CUT_CONSUMER}: {'; '.join(self.cut_consumer_after_return) or '-'}; "
            f"won back {', '.join(self.rejoined_consumer_shards) or 'nothing'} and read "
            f"{self.rejoined_consumer_records} records on them; checkpoints moved back: "
            f"{len(self.checkpoints_moved_back)}",
            f"{CUT_WORKER}: took a task again {seconds(self.cut_worker_back_seconds)} after its link came back; "
            f"its log since: {'; '.join(self.cut_worker_after_return) or '-'}",
            f"broker {self.broker_url}: {self.broker_messages} messages pushed, {self.messages_never_received} never "
            f"received by a worker, {self.unacknowledged_at_end} unacknowledged at the end; filesystem broker "
            f"folders: {len(self.filesystem_broker_dirs)}",
        ]
        return "\n".join(lines)


# --- logs -------------------------------------------------------------------------------------------
# "[2026-11-30 08:09:26,483: INFO/MainProcess] Task tracking.tasks.apply_pending[<id>] received"
TASK_LINE = re.compile(r"^\[[^\]]*\] Task ([\w.]+)\[([0-9a-f-]+)\] (\w+)")


def task_log(path: Path) -> list[tuple[float, str, str, str]]:
    """(time, task name, task id, what happened: received, succeeded, retry, raised, ...) from a worker's log.

    Workers log in UTC (Django sets TZ to TIME_ZONE).
    """
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        match = TASK_LINE.match(line)
        when = log_time(line) if match else None
        if when is not None:
            name, task_id, what = match.groups()
            rows.append((when, name, task_id, what))
    return rows


def log_time(line: str) -> float | None:
    """The time of a Celery log line ("[2026-11-30 08:09:26,483: ..."), in UTC, or None."""
    match = re.match(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
    if match is None:
        return None
    return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) + int(match.group(2)) / 1000


def sweep_log(path: Path) -> list[tuple[float, int]]:
    """(time, instances) of each sweep that re-enqueued instances, from a worker's log."""
    found = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        match = re.search(r"sweep: re-enqueueing (\d+) instances", line)
        if match and log_time(line) is not None:
            found.append((log_time(line), int(match.group(1))))
    return found


def tasks_in_hand(path: Path, *, until: float | None = None) -> list[str]:
    """Tasks a worker received and had not finished (by ``until``)."""
    open_tasks: dict[str, None] = {}
    for when, _, task_id, what in task_log(path):
        if until is not None and when > until:
            break
        if what == "received":
            open_tasks[task_id] = None
        else:
            open_tasks.pop(task_id, None)
    return list(open_tasks)


def broker_pushes(url: str) -> int:
    """How many messages Redis was given (LPUSH: what kombu's Redis transport sends tasks with)."""
    stats = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5).info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_lpush", "cmdstat_rpush"))


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.2):
    """Poll until ``condition()`` is truthy and return it; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return value


# --- the run ----------------------------------------------------------------------------------------
class Publisher(threading.Thread):
    """Puts envelopes on the stream from the machine, in order, at a rate (0: as fast as it can)."""

    def __init__(self, client, envelopes: list[dict], *, rate: float, chunk: int = 500):
        super().__init__(daemon=True)
        self.client, self.envelopes, self.rate, self.chunk = client, envelopes, rate, chunk
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for start in range(0, len(self.envelopes), self.chunk):
                chunk = self.envelopes[start : start + self.chunk]
                lines = ((start + n, json.dumps(e).encode()) for n, e in enumerate(chunk, start=1))
                records_publish(client=self.client, stream=STREAM, lines=lines)
                self.published += len(chunk)
                if self.rate:
                    ahead = started + self.published / self.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        if self.error is not None:
            raise RuntimeError(f"publishing failed: {self.error}") from self.error
        if self.is_alive():
            raise TimeoutError("publishing did not finish")


HELD_PENDING = "SELECT count(*) FROM tracking_inboxevent WHERE instance_id = ANY(%s) AND status = 'pending'"
PENDING_BEFORE = "SELECT count(*) FROM tracking_inboxevent WHERE status = 'pending' AND received_at < to_timestamp(%s)"


class Timeline(threading.Thread):
    """From the cut on, watches the database from the machine, five times a second: when the server
    has dropped each cut host's sessions, how many other sessions wait for their locks, when the
    survivor's checkpoints on the cut consumer's shards move, when the events of the tasks the cut
    worker held are all decided, and when every event stored before the cut is."""

    def __init__(self, dsn: str, *, since: float, hosts: dict[str, str], checkpoints: dict[str, int], held: set[int]):
        super().__init__(daemon=True)
        self.dsn, self.since, self.hosts = dsn, since, hosts
        self.checkpoints, self.held = checkpoints, list(held)
        self.sessions_gone: dict[str, float | None] = dict.fromkeys(hosts)
        self.checkpoint_moved: dict[str, float] = {}
        self.held_done: float | None = None if held else 0.0
        self.stored_before_done: float | None = None
        self.blocked = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as connection:
                while not self._stopping.is_set():
                    self._look(connection, time.time() - self.since)
                    self._stopping.wait(0.2)
                self._look(connection, time.time() - self.since)
        except psycopg.Error:
            pass  # the run is ending and the database with it

    def _look(self, connection, now: float) -> None:
        addresses = list(self.hosts.values())
        rows = connection.execute(
            "SELECT host(client_addr), count(*) FROM pg_stat_activity WHERE host(client_addr) = ANY(%s) GROUP BY 1",
            (addresses,),
        ).fetchall()
        present = dict(rows)
        for name, address in self.hosts.items():
            if not present.get(address) and self.sessions_gone[name] is None:
                self.sessions_gone[name] = now
        blocked = connection.execute(
            "SELECT count(*) FROM pg_stat_activity waiting WHERE EXISTS (SELECT 1 FROM pg_stat_activity holder"
            " WHERE holder.pid = ANY(pg_blocking_pids(waiting.pid)) AND host(holder.client_addr) = ANY(%s))",
            (addresses,),
        ).fetchone()[0]
        self.blocked = max(self.blocked, blocked)
        for shard, sequence in connection.execute(
            "SELECT shard_id, checkpoint_sequence FROM tracking_shardlease WHERE shard_id = ANY(%s)",
            (list(self.checkpoints),),
        ).fetchall():
            if sequence.isdigit() and int(sequence) > self.checkpoints[shard]:
                self.checkpoint_moved.setdefault(shard, now)
        if self.held_done is None and not self._count(connection, HELD_PENDING, self.held):
            self.held_done = now
        if self.stored_before_done is None and not self._count(connection, PENDING_BEFORE, self.since):
            self.stored_before_done = now

    @staticmethod
    def _count(connection, sql: str, parameter) -> int:
        return connection.execute(sql, (parameter,)).fetchone()[0]

    def stop(self) -> None:
        self._stopping.set()
        self.join(5)


class MultiHostRun:
    """One run on hosts that exist (a ``HostNetwork``): start the services, cut, measure, check."""

    def __init__(self, net: HostNetwork, options: Options, workdir: Path):
        self.net, self.options, self.workdir = net, options, workdir
        self.figures = Figures(hosts={name: host.address for name, host in net.hosts.items()})
        self.data = net["data"].address
        self.database_url = f"postgres://postgres@{self.data}:5432/{DATABASE}"
        self.broker_url = f"redis://{self.data}:6379/0"
        self.kinesis_url = f"http://{net['aws'].address}:{KINESIS_PORT}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.cluster_dir: Path | None = None
        self.sql: psycopg.Connection | None = None
        self.timeline: Timeline | None = None
        self.started = time.time()

    def say(self, message: str) -> None:
        if not self.options.quiet:
            print(f"[{time.time() - self.started:6.1f} s] {message}", file=sys.stderr, flush=True)  # noqa: T201

    # --- hosts' services ------------------------------------------------------------------------
    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def host_env(self, host: str) -> dict:
        """The environment of a service process: everything that matters is set, nothing inherited
        from the caller's (a test run's DATABASE_URL, say) beyond PATH and locale."""
        var_dir = self.workdir / "var" / host
        var_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(var_dir),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "statustracker.settings",
            "DEBUG": "false",
            "SECRET_KEY": "multihost-run-only",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_VISIBILITY_TIMEOUT": str(self.options.visibility_timeout),
            "CELERY_PREFETCH_MULTIPLIER": "4",
            "CELERY_TASK_LOG_LEVEL": "INFO",
            "LOG_LEVEL": "INFO",
            "STATUSTRACKER_TASK_BATCH_SIZE": "200",
            "STATUSTRACKER_SWEEP_AFTER_SECONDS": str(self.options.sweep_after),
            "SWEEP_INTERVAL_SECONDS": str(self.options.sweep_interval),
            "STATUSTRACKER_VAR_DIR": str(var_dir),
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
        }

    def start(self, name: str, host: str, argv: list[str]) -> subprocess.Popen:
        process = self.net.start(host, argv, env=self.host_env(host), log=self.log(name), cwd=ROOT)
        self.processes[name] = process
        return process

    def start_postgres(self) -> None:
        # The cluster lives outside the work folder: the postgres user must reach it (a test's
        # tmp_path is private to root).
        self.cluster_dir = Path(tempfile.mkdtemp(prefix="stmh-pg-"))
        os.chmod(self.cluster_dir, 0o755)
        data_dir = self.cluster_dir / "data"
        data_dir.mkdir()
        shutil.chown(data_dir, "postgres", "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.options.pg_bin / "initdb"), "-D", str(data_dir)]
            + ["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        (data_dir / "pg_hba.conf").write_text(
            f"local all all trust\nhost all all {self.data.rsplit('.', 1)[0]}.0/24 trust\n"
        )
        self.start(
            "postgres",
            "data",
            ["runuser", "-u", "postgres", "--", str(self.options.pg_bin / "postgres"), "-D", str(data_dir)]
            + ["-c", f"listen_addresses={self.data}", "-c", f"unix_socket_directories={data_dir}"]
            # A throwaway cluster: durability is not what is measured.
            + ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "dynamic_shared_memory_type=mmap"]
            + ["-c", "log_min_messages=warning"],
        )

        def answers() -> bool:
            try:
                psycopg.connect(f"postgresql://postgres@{self.data}:5432/postgres", connect_timeout=1).close()
                return True
            except psycopg.OperationalError:
                return False

        wait_until(answers, timeout=30, what="PostgreSQL on the data host")
        with psycopg.connect(f"postgresql://postgres@{self.data}:5432/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        self.sql = psycopg.connect(f"postgresql://postgres@{self.data}:5432/{DATABASE}", autocommit=True)

    def stop_postgres(self) -> None:
        process = self.processes.get("postgres")
        if process is not None and process.poll() is None:
            # Immediate shutdown: the postmaster still removes its shared memory.
            postmaster = self.cluster_dir / "data" / "postmaster.pid"
            try:
                os.kill(int(postmaster.read_text().split()[0]), signal.SIGQUIT)
            except (OSError, ValueError, IndexError):
                pass  # not started, or gone: the teardown kills what is left
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.cluster_dir is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            self.cluster_dir = None

    def start_redis(self) -> None:
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.start(
            "redis",
            "data",
            ["redis-server", "--bind", self.data, "--port", "6379", "--save", "", "--appendonly", "no"]
            + ["--protected-mode", "no", "--dir", str(redis_dir)],
        )
        client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=1, socket_timeout=5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=15, what="Redis on the data host")

    def start_kinesalite(self) -> None:
        self.start(
            "kinesalite",
            "aws",
            [PYTHON, "-m", "tracking.arrival.kinesis.emulator", "--host", self.net["aws"].address]
            + ["--port", str(KINESIS_PORT)],
        )
        client = local_client(self.kinesis_url)

        def answers() -> bool:
            try:
                client.list_streams()
                return True
            except Exception:  # noqa: BLE001 - not yet
                return False

        wait_until(answers, timeout=30, what="kinesalite on the aws host")

    def manage(self, host: str, *args: str) -> None:
        self.net.run(host, [PYTHON, "manage.py", *args], env=self.host_env(host), cwd=ROOT, timeout=300)

    def start_pipeline(self) -> None:
        opts = self.options
        for host in CONSUMERS:
            self.start(
                host,
                host,
                [PYTHON, "manage.py", "consume_kinesis", f"--stream={STREAM}", f"--endpoint-url={self.kinesis_url}"]
                + [f"--worker-id={self.worker_id(host)}", f"--lease-duration={opts.lease_seconds}"]
                + [f"--batch-size={opts.batch_size}", "--shard-sync-interval=2", "--idle-poll-interval=0.5"]
                + ["--progress-interval=10", "--log-format=json", "--log-level=DEBUG"],
            )
            self.figures.consumer_logs[host] = self.log(host)
        for host in WORKERS:
            self.start(
                host,
                host,
                [PYTHON, "-m", "celery", "-A", "statustracker", "worker", "-l", "info", "-c", str(opts.concurrency)]
                + ["-Q", "statustracker", "-n", self.worker_id(host), "--without-gossip"]
                + ["--without-mingle"],
            )
        self.start("beat", "data", [PYTHON, "-m", "celery", "-A", "statustracker", "beat", "-l", "info"])

    # --- the database, read from the machine ------------------------------------------------------
    def query(self, sql: str, params=()) -> list[tuple]:
        return self.sql.execute(sql, params).fetchall()

    def scalar(self, sql: str, params=()):
        return self.query(sql, params)[0][0]

    def owners(self) -> dict[str, str]:
        return dict(self.query("SELECT shard_id, owner FROM tracking_shardlease WHERE stream = %s", (STREAM,)))

    def stored(self) -> int:
        return self.scalar("SELECT count(*) FROM tracking_inboxevent")

    def decided(self) -> int:
        return self.scalar("SELECT count(*) FROM tracking_inboxevent WHERE status <> 'pending'")

    def pending(self) -> int:
        return self.scalar("SELECT count(*) FROM tracking_inboxevent WHERE status = 'pending'")

    def in_transaction(self, host: str, *, not_on: str = "") -> bool:
        """Whether a session of the host has a transaction open (a batch being stored, instances locked),
        whose statement so far is not on the table ``not_on``."""
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = %s AND xact_start IS NOT NULL"
                " AND (%s = '' OR strpos(query, %s) = 0)",
                (self.net[host].address, not_on, not_on),
            )
        )

    def sessions(self, host: str) -> int:
        return self.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = %s", (self.net[host].address,)
        )

    def checkpoints(self) -> dict[str, int]:
        return {
            shard: int(sequence) if sequence.isdigit() else -1
            for shard, sequence in self.query(
                "SELECT shard_id, checkpoint_sequence FROM tracking_shardlease WHERE stream = %s", (STREAM,)
            )
        }

    # --- the run ------------------------------------------------------------------------------------
    def run(self) -> Figures:
        opts, fig = self.options, self.figures
        fig.broker_url = self.broker_url
        self.say("starting PostgreSQL and Redis on the data host, kinesalite on the aws host")
        self.start_postgres()
        self.start_redis()
        self.start_kinesalite()
        self.manage("data", "migrate", "--verbosity=0")
        self.manage("data", "import_models", str(MODEL_FILE))
        kinesis = local_client(self.kinesis_url)
        stream_create(kinesis, name=STREAM, shards=opts.shards)
        envelopes = order_events(count=opts.events, seed=opts.seed, in_flight=max(50, opts.events // 50))
        tail_from = int(len(envelopes) * (1 - opts.tail))
        head, tail = envelopes[:tail_from], envelopes[tail_from:]
        fig.events_published = len(envelopes)
        fig.events_distinct = len({e["event_id"] for e in envelopes})

        self.say("starting the consumers, the workers and beat")
        self.start_pipeline()
        self.wait_balanced(timeout=60 + 4 * opts.lease_seconds)
        wait_until(
            lambda: all("Connected to redis" in self.log(w).read_text(errors="replace") for w in WORKERS),
            timeout=60,
            what="the workers connected to the broker",
        )

        self.say(f"publishing {len(head)} events")
        publisher = Publisher(kinesis, head, rate=opts.rate)
        publisher.start()
        head_distinct = len({e["event_id"] for e in head})
        wait_until(
            lambda: self.decided() >= opts.cut_at * head_distinct,
            timeout=opts.timeout,
            what=f"{opts.cut_at:.0%} of the events applied",
            interval=0.05,
        )
        self.cut()
        publisher.finish(opts.timeout)
        wait_until(lambda: self.stored() >= head_distinct, timeout=opts.timeout, what="every event stored")
        wait_until(lambda: not self.pending(), timeout=opts.timeout, what="every event applied", interval=0.2)
        self.all_applied_at = time.time()
        self.say(f"every event published so far applied, {self.all_applied_at - self.cut_at:.1f} s after the cut")
        if opts.visibility_timeout < opts.timeout:
            # The tasks the cut worker held come back after the visibility timeout, maybe after their
            # events were applied by other tasks or a sweep: wait for them too.
            try:
                wait_until(
                    lambda: self.redone_tasks().keys() >= set(self.figures.cut_worker_tasks),
                    timeout=opts.visibility_timeout + 30,
                    what=f"the tasks {CUT_WORKER} held run by worker-2",
                    interval=0.5,
                )
            except TimeoutError:
                self.say(f"the tasks {CUT_WORKER} held were not run again")
        still_cut = [CUT_WORKER] if opts.consumer_back_after else [CUT_WORKER, CUT_CONSUMER]
        try:
            wait_until(
                lambda: all(self.timeline.sessions_gone[host] is not None for host in still_cut),
                timeout=60,
                what="the database dropping the cut hosts' sessions",
            )
        except TimeoutError:
            self.say("the database still holds sessions of the cut hosts")
        self.measure_after_cut()

        self.restore()
        self.say(f"publishing the last {len(tail)} events")
        tail_publisher = Publisher(kinesis, tail, rate=opts.rate)
        tail_publisher.start()
        tail_publisher.finish(opts.timeout)
        wait_until(lambda: self.stored() >= fig.events_distinct, timeout=opts.timeout, what="the last events stored")
        wait_until(lambda: not self.pending(), timeout=opts.timeout, what="the last events applied")
        # Beat sends a task every sweep interval: the cut worker gets one as soon as it reads the queue again.
        try:
            wait_until(self.cut_worker_took_a_task, timeout=60, what=f"{CUT_WORKER} taking tasks again")
        except TimeoutError:
            self.say(f"{CUT_WORKER} took no task after it came back")
        self.measure_return()
        self.verify(envelopes)
        self.say("done")
        return fig

    def wait_balanced(self, *, timeout: float) -> None:
        share = -(-self.options.shards // len(CONSUMERS))
        wanted = sorted((self.worker_id(host), share) for host in CONSUMERS)
        wait_until(
            lambda: sorted(Counter(self.owners().values()).items()) == wanted,
            timeout=timeout,
            what="each consumer holding its share of the shards",
        )

    def worker_id(self, host: str) -> str:
        return f"{host}@{self.net[host].address}"

    def cut(self) -> None:
        """Cut consumer-1, then worker-1, each at a moment it has a transaction open: the consumer
        storing a batch before its checkpoint (the lease row is not locked, so the lease can be taken
        over meanwhile), the worker applying a task (its instances locked)."""
        fig = self.figures
        self.cut_at, fig.cut_consumer_in_transaction = self.cut_in_transaction(
            CUT_CONSUMER, not_on="tracking_shardlease"
        )
        owner = self.worker_id(CUT_CONSUMER)
        fig.cut_consumer_shards = sorted(shard for shard, holder in self.owners().items() if holder == owner)
        checkpoints = self.checkpoints()
        if self.options.consumer_back_after:
            threading.Timer(self.cut_at + self.options.consumer_back_after - time.time(), self.consumer_back).start()
        self.worker_cut_at, fig.cut_worker_in_transaction = self.cut_in_transaction(
            CUT_WORKER, ready=lambda: bool(tasks_in_hand(self.log(CUT_WORKER)))
        )
        self.say(f"cut {CUT_CONSUMER} and, {self.worker_cut_at - self.cut_at:.2f} s later, {CUT_WORKER}")
        self.applied_at_cut = self.decided()
        self.first_stored_at = float(
            self.scalar("SELECT extract(epoch FROM min(received_at)) FROM tracking_inboxevent")
        )
        fig.events_per_second_all_hosts = self.applied_at_cut / max(self.cut_at - self.first_stored_at, 1e-6)
        # What the cut worker held: received and not finished before the cut; their instances from the
        # broker's record of unacknowledged messages.
        time.sleep(0.2)
        fig.cut_worker_tasks = tasks_in_hand(self.log(CUT_WORKER), until=self.worker_cut_at)
        held = self.instances_of_tasks(set(fig.cut_worker_tasks))
        self.timeline = Timeline(
            self.database_url.replace("postgres://", "postgresql://"),
            since=self.cut_at,
            hosts={name: self.net[name].address for name in (CUT_CONSUMER, CUT_WORKER)},
            checkpoints={shard: checkpoints[shard] for shard in fig.cut_consumer_shards},
            held=held,
        )
        self.timeline.start()

    def cut_in_transaction(
        self, host: str, *, ready: Callable[[], bool] = lambda: True, not_on: str = ""
    ) -> tuple[float, bool]:
        """Take the host's link down at a moment it has a database transaction open (and ``ready``),
        whose statements so far are not on the table ``not_on``; returns when, and whether the server
        still holds that transaction after the cut.

        The server then keeps the transaction, and its locks, until it notices the host is gone. When
        the transaction ended in the moment before the link went down, the link comes back at once
        (after 50 ms, well within TCP's first retransmission: nobody notices) and the next such moment
        is waited for; after 30 s the cut stands whatever was open.
        """
        deadline = time.monotonic() + 30
        while True:
            if (self.in_transaction(host, not_on=not_on) and ready()) or time.monotonic() > deadline:
                cut_at = self.net.cut(host)
                time.sleep(0.05)
                held = self.in_transaction(host, not_on=not_on)
                if held or time.monotonic() > deadline:
                    return cut_at, held
                self.net.restore(host)
            time.sleep(0.002)

    def consumer_back(self) -> None:
        """Bring consumer-1 back alone, while the rest of the run goes on."""
        self.figures.consumer_transaction_open_when_back = self.in_transaction(CUT_CONSUMER)
        self.consumer_back_at = self.net.restore(CUT_CONSUMER)
        self.figures.consumer_back_seconds = self.consumer_back_at - self.cut_at
        self.say(f"{CUT_CONSUMER} back")

    def instances_of_tasks(self, task_ids: set[str]) -> set[int]:
        """The instances named by these tasks, from the broker's unacknowledged messages (kombu keeps
        each as ``[message, exchange, routing key]`` in the hash ``unacked``)."""
        client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=1, socket_timeout=5)
        instances: set[int] = set()
        for value in client.hvals("unacked"):
            message = json.loads(value)[0]
            if message["headers"].get("id") in task_ids and message["headers"].get("task") == APPLY_TASK:
                args = json.loads(base64.b64decode(message["body"]))[0]
                instances.update(args[0])
        return instances

    def measure_after_cut(self) -> None:
        fig, cut_at = self.figures, self.cut_at
        self.timeline.stop()
        fig.sessions_dropped_seconds = self.timeline.sessions_gone
        fig.sessions_blocked_by_cut_hosts = self.timeline.blocked
        fig.held_events_applied_seconds = self.timeline.held_done
        fig.stored_before_cut_applied_seconds = self.timeline.stored_before_done
        moved = self.timeline.checkpoint_moved
        fig.storing_resumed_seconds = max(moved.values()) if moved else None
        fig.all_applied_seconds = self.all_applied_at - cut_at
        head_applied = self.decided()
        fig.events_per_second_after_cut = (head_applied - self.applied_at_cut) / max(fig.all_applied_seconds, 1e-6)
        acquired: dict[str, float] = {}
        for entry in json_lines(self.log("consumer-2")):
            if entry.get("event") == "lease_acquired" and entry["ts"] > cut_at:
                if entry.get("shard") in fig.cut_consumer_shards:
                    acquired.setdefault(entry["shard"], entry["ts"])
        fig.shards_taken_by_survivor = sorted(acquired)
        if acquired and set(acquired) == set(fig.cut_consumer_shards):
            fig.handover_seconds = max(acquired.values()) - cut_at
        redone = self.redone_tasks()
        fig.tasks_redone = sorted(redone)
        if redone:
            fig.tasks_redone_seconds = max(redone.values()) - self.worker_cut_at
        fig.sweeps = [
            (when - cut_at, instances)
            for host in WORKERS
            for when, instances in sweep_log(self.log(host))
            if cut_at < when <= self.all_applied_at
        ]
        self.checkpoints_before_return = self.checkpoints()

    def redone_tasks(self) -> dict[str, float]:
        """The tasks the cut worker held that the other worker ran: the same task ids, delivered again."""
        redone: dict[str, float] = {}
        for when, _, task_id, what in task_log(self.log("worker-2")):
            if task_id in self.figures.cut_worker_tasks and what == "succeeded" and when > self.worker_cut_at:
                redone.setdefault(task_id, when)
        return redone

    def restore(self) -> None:
        """Bring the cut hosts back and wait until consumer-1 has its share of the shards again."""
        self.returned_at = time.time()
        if not self.options.consumer_back_after:
            self.net.restore(CUT_CONSUMER)
        self.net.restore(CUT_WORKER)
        self.say(f"{CUT_WORKER}{'' if self.options.consumer_back_after else ' and ' + CUT_CONSUMER} back")
        try:
            self.wait_balanced(timeout=30 + 4 * self.options.lease_seconds)
        except TimeoutError:
            self.say(f"{CUT_CONSUMER} has not won its share back")

    def cut_worker_took_a_task(self) -> float | None:
        received = [when for when, _, _, what in task_log(self.log(CUT_WORKER)) if what == "received"]
        back = [when for when in received if when >= self.returned_at]
        return min(back) - self.returned_at if back else None

    def measure_return(self) -> None:
        fig = self.figures
        before, after = self.checkpoints_before_return, self.checkpoints()
        fig.checkpoints_moved_back = sorted(shard for shard, value in before.items() if after.get(shard, -1) < value)
        back_at = getattr(self, "consumer_back_at", self.returned_at)
        owner = self.worker_id(CUT_CONSUMER)
        log = [entry for entry in json_lines(self.log(CUT_CONSUMER)) if entry.get("ts", 0) >= back_at]
        seen = Counter(
            entry["event"] + (f" ({entry['reason']})" if entry.get("reason") else "")
            for entry in log
            if entry.get("event") in ("lease_dropped", "lease_acquired", "lease_requested", "database_unavailable")
        )
        fig.cut_consumer_after_return = [f"{name} x{count}" for name, count in sorted(seen.items())]
        fig.rejoined_consumer_shards = sorted(
            {e["shard"] for e in log if e.get("event") == "lease_acquired" and e.get("worker") == owner}
        )
        fig.rejoined_consumer_records = sum(
            e.get("records", 0) for e in log if e.get("event") == "read" and e["ts"] >= self.returned_at
        )
        lines = [line for line in self.log(CUT_WORKER).read_text(errors="replace").splitlines() if line.startswith("[")]
        after_return = [line for line in lines if log_time(line) and log_time(line) >= self.returned_at]
        notes = Counter()
        for line in after_return:
            for phrase in ("dropping stale connection", "Connected to redis", "asked for a sweep", "succeeded"):
                if phrase in line:
                    notes[phrase] += 1
        fig.cut_worker_after_return = [f"{phrase} x{count}" for phrase, count in sorted(notes.items())]
        fig.cut_worker_back_seconds = self.cut_worker_took_a_task()

    # --- the end state, against the replay --------------------------------------------------------
    def verify(self, envelopes: list[dict]) -> None:
        fig = self.figures
        document = yaml.safe_load(MODEL_FILE.read_text())
        expected = replay(document, envelopes)
        instances = {
            transaction: (state or None, context)
            for transaction, state, context in self.query(
                "SELECT transaction_id, state, context FROM tracking_processinstance"
            )
        }
        events = {
            event_id: (status, duplicates)
            for event_id, status, duplicates in self.query(
                "SELECT event_id, status, duplicate_count FROM tracking_inboxevent"
            )
        }
        history = defaultdict(list)
        for transaction, from_state, to_state, event_id in self.query(
            "SELECT i.transaction_id, t.from_state, t.to_state, e.event_id FROM tracking_transitionrecord t"
            " JOIN tracking_processinstance i ON i.id = t.instance_id"
            " LEFT JOIN tracking_inboxevent e ON e.id = t.event_id ORDER BY t.id"
        ):
            history[transaction].append((from_state or None, to_state, event_id))
        fig.events_stored = len(events)
        fig.events_lost = len({e["event_id"] for e in envelopes} - set(events))
        fig.duplicates_counted = sum(duplicates for _, duplicates in events.values())
        fig.pending_at_end = sum(1 for status, _ in events.values() if status == "pending")
        fig.dead_letters = self.scalar("SELECT count(*) FROM tracking_deadletter")
        differences = []
        twice = 0
        for transaction, result in expected.items():
            fig.duplicates_expected += sum(result["duplicates"].values())
            state, context = instances.get(transaction, (None, {}))
            if (state, context) != (result["state"], result["context"]):
                differences.append((transaction, state, result["state"]))
            seen = Counter(history.get(transaction, []))
            twice += sum(count - 1 for count in seen.values() if count > 1)
            if history.get(transaction, []) != result["history"]:
                differences.append((transaction, "history", history.get(transaction), result["history"]))
            for event_id, outcome in result["outcomes"].items():
                if events.get(event_id, (None,))[0] != outcome:
                    differences.append((event_id, events.get(event_id, (None,))[0], outcome))
        fig.transitions_applied_twice = twice
        fig.replay_differences = differences
        fig.broker_messages = broker_pushes(self.broker_url)
        client = redis.Redis.from_url(self.broker_url, socket_timeout=5)
        queued = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
        received = sum(1 for host in WORKERS for *_, what in task_log(self.log(host)) if what == "received")
        fig.messages_never_received = fig.broker_messages - received - queued
        fig.unacknowledged_at_end = redis.Redis.from_url(self.broker_url, socket_timeout=5).hlen("unacked")
        fig.filesystem_broker_dirs = [str(path) for path in (self.workdir / "var").glob("*/broker")]

    def stop(self) -> None:
        """SIGTERM the consumers and workers (their logs end cleanly), then stop PostgreSQL."""
        try:
            if self.timeline is not None:
                self.timeline.stop()
            for name in (*CONSUMERS, *WORKERS, "beat"):
                process = self.processes.get(name)
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 8
            for name in (*CONSUMERS, *WORKERS, "beat"):
                process = self.processes.get(name)
                if process is not None:
                    try:
                        process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                    except subprocess.TimeoutExpired:
                        pass  # the teardown kills it
            if self.sql is not None:
                self.sql.close()
        finally:
            self.stop_postgres()


def run(options: Options, *, workdir: Path | None = None) -> Figures:
    """One run on fresh hosts; everything is torn down before it returns (or raises)."""
    own_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="stmh-run-"))
    workdir.mkdir(parents=True, exist_ok=True)
    failed = True
    try:
        with HostNetwork(HOSTS) as net:
            pipeline = MultiHostRun(net, options, workdir)
            try:
                figures = pipeline.run()
            finally:
                pipeline.stop()
        failed = False
        return figures
    finally:
        if own_workdir and not options.keep and not failed:
            shutil.rmtree(workdir, ignore_errors=True)
        elif own_workdir:
            print(f"logs kept in {workdir}", file=sys.stderr)  # noqa: T201


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Options()
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--shards", type=int, default=defaults.shards)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="events/s offered; 0: as fast as it can")
    parser.add_argument("--tail", type=float, default=defaults.tail, help="share published after the links are back")
    parser.add_argument("--lease-seconds", type=float, default=defaults.lease_seconds)
    parser.add_argument(
        "--visibility-timeout", type=int, default=defaults.visibility_timeout, help="CELERY_VISIBILITY_TIMEOUT"
    )
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="processes per worker host")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="consume_kinesis --batch-size")
    parser.add_argument("--cut-at", type=float, default=defaults.cut_at, help="share applied when the links are cut")
    parser.add_argument(
        "--sweep-after", type=int, default=defaults.sweep_after, help="STATUSTRACKER_SWEEP_AFTER_SECONDS"
    )
    parser.add_argument("--sweep-interval", type=int, default=defaults.sweep_interval, help="SWEEP_INTERVAL_SECONDS")
    parser.add_argument(
        "--consumer-back-after",
        type=float,
        default=defaults.consumer_back_after,
        help="bring consumer-1 back this many seconds after the cut (0: at the end, with worker-1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--pg-bin", type=Path, default=defaults.pg_bin)
    parser.add_argument("--keep", action="store_true", help="keep the logs (their folder is printed)")
    args = parser.parse_args()
    return Options(**{name.replace("-", "_"): value for name, value in vars(args).items()})


def main() -> None:
    options = parse_args()
    figures = run(options)
    print(figures.report(options))  # noqa: T201


if __name__ == "__main__":
    main()
