"""Benchmark: customers' open pages and page views under gunicorn while the pipeline takes events.

Not a test: it prints figures. As production sees it, on one machine:

- **the web tier**: gunicorn (``--worker-class``, ``--workers``, ``--threads``; DEBUG off, static files
  collected, Redis as the shared cache, ``NUM_PROXIES=1`` as behind a proxy) on 127.0.0.1, on the
  PostgreSQL database ``--database`` that ``bench/page_bench.py``'s generator fills (1,000,000
  instances and 10,000,000 events by default; built when the database is missing or with
  ``--generate``);
- **the customers**: wrk (``bench/mixed_load.lua``) at a constant rate over loopback: ``--pages``
  open pages of instances under way, each with its own signed link and client address, polling their
  live URL every ``--poll-seconds`` as htmx does (the stamp of what the page shows; 204 while
  nothing changed, the fragment and its new stamp when something did, at least once a minute), and
  ``--views-per-second`` page views of distinct links. Each open page is loaded once before the
  measured phase, for the poll URL it shows. Polls and views run as two wrk processes, so each has
  its own latency histogram (from the request written to the answer read, in microseconds), over a
  few keep-alive connections each (``--poll-connections``, ``--view-connections``), as a proxy's
  connections to gunicorn carry many customers' requests; a request that finds them all busy at its
  time is counted as late;
- **the pipeline** at the same time: ``bench/kinesis_bench.py``'s latency phase (kinesalite, two
  ``consume_kinesis`` processes, Celery workers on Redis) writing into the same database at
  ``--rate`` events/s of new orders, with its put -> processed_at latency.

The web load starts when the pipeline's consumers hold their shards (the moment the producer
starts) and lasts as long as the producer (``--seconds``). CPU time of gunicorn, the PostgreSQL
backends of the web and of the pipeline, the consumers, the workers, kinesalite and wrk is read from
/proc over that window, with everything else that ran meanwhile. ``--profile DIR`` samples the
gunicorn workers with py-spy and prints where their time goes.

It uses the database ``--database`` (created when missing), Redis db ``--redis-db`` (broker and cache;
not flushed) and ``STATUSTRACKER_VAR_DIR`` var/mixed. Every process it starts is stopped at the end.
Needs wrk (``apt-get install wrk``) and kinesalite (``npm install``).

    .venv/bin/python bench/mixed_load.py                                  # 3 runs of 60 s, 1M instances
    .venv/bin/python bench/mixed_load.py --instances 20000 --runs 1 --seconds 15 --generate
    .venv/bin/python bench/mixed_load.py --rate 0 --runs 1                # the web load alone
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import kinesis_bench, page_bench  # noqa: E402
from bench.kinesis_bench import Managed  # noqa: E402
from tracking.arrival.kinesis.emulator import Kinesalite  # noqa: E402

LUA_SCRIPT = ROOT / "bench" / "mixed_load.lua"
WEB_APPLICATION_NAME = "mixed-load-web"
SECRET_KEY = "mixed-load-bench-only"
OPEN_STATUSES = ("active", "in_exception")  # pages that poll; a finished page stops polling
TARGETS_MS = {"poll": 50, "view": 100}
PIPELINE_TARGET_S = 0.3


@dataclass
class Page:
    """A customer's page: their link and their address."""

    path: str  # the page, /track/<token>/
    address: str  # the customer's address, sent as X-Forwarded-For


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="length of the mixed phase (web load and producer)")
    parser.add_argument("--pages", type=int, default=1000, help="open customer pages polling")
    parser.add_argument("--poll-seconds", type=int, default=10, help="each open page polls this often")
    parser.add_argument("--views-per-second", type=float, default=10.0, help="page views of distinct links")
    parser.add_argument("--poll-connections", type=int, default=32, help="wrk connections for the polls")
    parser.add_argument("--view-connections", type=int, default=8, help="wrk connections for the page views")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="events/s the pipeline is offered; 0: the web load alone"
    )
    parser.add_argument(
        "--pipeline-args",
        default="",
        help="more options for bench/kinesis_bench.py's parser, whose defaults set up the pipeline, "
        'e.g. "--consumers 1"',
    )
    parser.add_argument("--worker-class", default="gthread", help="gunicorn --worker-class")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn --workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn --threads (gthread)")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options, e.g. '--keep-alive 5'")
    parser.add_argument("--database", default="bench_mixed")
    parser.add_argument("--host", default="127.0.0.1", help="PostgreSQL host")
    parser.add_argument("--user", default="postgres", help="PostgreSQL user")
    parser.add_argument("--redis-db", default="7")
    parser.add_argument("--generate", action="store_true", help="build the data set again (drops the database)")
    parser.add_argument("--instances", type=int, default=1_000_000, help="instances to generate")
    parser.add_argument("--events-per-instance", type=int, default=10, help="inbox events per generated instance")
    parser.add_argument("--chunk", type=int, default=100_000, help="instances per INSERT statement when generating")
    parser.add_argument("--seed", type=int, default=7, help="which instances are picked for pages and views")
    parser.add_argument("--profile", metavar="DIR", help="sample the gunicorn workers with py-spy during each run")
    parser.add_argument("--json", help="also write every figure of every run to this file")
    parser.add_argument("--logs", metavar="DIR", help="keep the logs of every process here (default: deleted)")
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --- the data set and the customers' links ------------------------------------------------------
def database_exists(args: argparse.Namespace) -> bool:
    with psycopg.connect(f"host={args.host} user={args.user} dbname=postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone() is not None


def customer_pages(args: argparse.Namespace, views_needed: int) -> tuple[list[Page], list[Page]]:
    """Open pages (instances under way) and pages to view, distinct, random, of the generated instances."""
    from tracking.models import ProcessInstance
    from tracking.progress.links import instance_tracking_url

    rng = random.Random(args.seed)
    high = ProcessInstance.objects.order_by("-id").values_list("id", flat=True).first() or 0
    order = rng.sample(range(1, high + 1), high)
    open_pages, views = [], []
    for first in range(0, high, 5000):
        if len(open_pages) == args.pages and len(views) == views_needed:
            break
        chunk = order[first : first + 5000]
        rows = ProcessInstance.objects.filter(pk__in=chunk, transaction_id__startswith="ORD-").only(
            "id", "link_nonce", "status"
        )
        by_id = {row.pk: row for row in rows}
        for pk in chunk:
            row = by_id.get(pk)
            if row is None or row.status == "waiting":
                continue
            if row.status in OPEN_STATUSES and len(open_pages) < args.pages:
                wanted = open_pages
            elif len(views) < views_needed:
                wanted = views
            else:
                continue
            wanted.append(Page(path=urlsplit(instance_tracking_url(instance=row)).path, address=""))
    if len(open_pages) < args.pages or len(views) < views_needed:
        raise RuntimeError(f"only {len(open_pages)} open pages and {len(views)} pages to view in the data set")
    for number, page in enumerate(open_pages + views, start=1):
        page.address = f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"
    return open_pages, views


def live_urls(base_url: str, pages: list[Page], *, connections: int = 8) -> list[str]:
    """Load each open page as its customer did, for the poll URL it shows (hx-get, with the stamp).

    Over several connections at once, so that every gunicorn worker and thread has served pages
    (templates compiled, database connection open) before the measured phase.
    """
    address = urlsplit(base_url)

    def load(share: list[Page]) -> list[str]:
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        urls = []
        try:
            for page in share:
                for attempt in (1, 2):
                    try:
                        conn.request("GET", page.path, headers={"X-Forwarded-For": page.address})
                        response = conn.getresponse()
                        body = response.read().decode()
                        break
                    except (http.client.RemoteDisconnected, ConnectionError):
                        conn.close()  # the server closed an idle keep-alive connection: open another
                        if attempt == 2:
                            raise
                if response.status != 200 or 'hx-get="' not in body:
                    raise RuntimeError(f"{page.path}: {response.status}, no poll URL: {body[:300]}")
                urls.append(body.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&"))
        finally:
            conn.close()
        return urls

    shares = [pages[number::connections] for number in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        loaded = list(pool.map(load, shares))
    by_page = {
        page.path: url
        for share, urls in zip(shares, loaded, strict=True)
        for page, url in zip(share, urls, strict=True)
    }
    return [by_page[page.path] for page in pages]


def write_pages(path: Path, lines: list[tuple[str, Page]]) -> Path:
    path.write_text("".join(f"{target}\t{page.address}\t{page.path}\n" for target, page in lines))
    return path


# --- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def web_environment(args: argparse.Namespace) -> dict:
    return {
        **os.environ,
        "DEBUG": "False",
        "STATIC_MANIFEST": "True",  # hashed, compressed files as in production (this process sets it off)
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"postgres://{args.user}@{args.host}:5432/{args.database}"
        f"?application_name={WEB_APPLICATION_NAME}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "STATUSTRACKER_VAR_DIR": str(ROOT / "var" / "mixed"),
        "STATUSTRACKER_PAGE_POLL_SECONDS": str(args.poll_seconds),
        "NUM_PROXIES": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }


def start_gunicorn(args: argparse.Namespace, workdir: Path) -> tuple[Managed, str]:
    env = web_environment(args)
    subprocess.run(
        [kinesis_bench.PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    command = [
        kinesis_bench.PYTHON, "-m", "gunicorn", "statustracker.wsgi", "--bind", f"127.0.0.1:{port}",
        "--worker-class", args.worker_class, "--workers", str(args.workers), "--threads", str(args.threads),
        # The workers' heartbeat touches a file: on a disk it can stall a worker (gunicorn's docs), in memory not.
        "--worker-tmp-dir", "/dev/shm", *args.gunicorn_args.split(),
    ]  # fmt: skip
    gunicorn = Managed("gunicorn", command, env=env, log=workdir / "gunicorn.log")
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            pass
        if gunicorn.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer: {gunicorn.log.read_text()[-2000:]}")
        time.sleep(0.2)
    log(f"gunicorn on {base_url}: {' '.join(command[3:])}")
    return gunicorn, base_url


def pipeline_settings(args: argparse.Namespace) -> argparse.Namespace:
    """kinesis_bench's own options and defaults, so that both benchmarks run the pipeline alike."""
    argv = [
        "kinesis_bench.py", "--database", args.database, "--pg-host", args.host, "--pg-user", args.user,
        "--redis-db", args.redis_db, "--rate", str(args.rate), "--latency-seconds", str(args.seconds),
        *args.pipeline_args.split(),
    ]  # fmt: skip
    saved, sys.argv = sys.argv, argv
    try:
        return kinesis_bench.parse_args()
    finally:
        sys.argv = saved


class MixedCpuMeter(kinesis_bench.CpuMeter):
    """kinesis_bench's meter, with the database's backends followed on their own, split into the web's and
    the pipeline's by application name.

    Backends come and go during a run (each process renews its connection after CONN_MAX_AGE, 60 s), and
    the CPU of one that has ended shows only in the postmaster's count of its reaped children. So they
    are read every ``interval`` seconds: one that ends loses at most that much of its time, and what the
    ended ones used is taken out of the postmaster's count, which is left with PostgreSQL's own
    processes (autovacuum, checkpointer, WAL writer).
    """

    interval = 0.2

    def _pids(self) -> dict[str, list[int]]:
        pids = super()._pids()
        del pids["postgres"]
        return pids

    def _read_backends(self, conn, *, at_start: bool) -> set[int]:
        rows = conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            [self.database],
        ).fetchall()
        for pid, application in rows:
            cpu = kinesis_bench.cpu_seconds(pid)
            # pid -> [web or not, CPU when first seen (0 for a backend that starts during the run), latest]
            self.backends.setdefault(pid, [application == WEB_APPLICATION_NAME, cpu if at_start else 0.0, cpu])[2] = cpu
        return {pid for pid, _ in rows}

    def _follow(self) -> None:
        while not self._halt.wait(self.interval):
            self._read_backends(self._conn, at_start=False)

    def start(self) -> None:
        self.backends: dict[int, list] = {}
        self._conn = psycopg.connect(self.admin_dsn, autocommit=True)
        self._read_backends(self._conn, at_start=True)
        super().start()
        self._halt = threading.Event()
        self._follower = threading.Thread(target=self._follow, daemon=True)
        self._follower.start()

    def stop(self) -> None:
        self._halt.set()
        self._follower.join()
        alive = self._read_backends(self._conn, at_start=False)
        super().stop()
        self._conn.close()
        used = {pid: latest - first for pid, (_, first, latest) in self.backends.items()}
        self.result["postgres, web"] = sum(used[pid] for pid, (web, _, _) in self.backends.items() if web)
        self.result["postgres, pipeline"] = sum(used[pid] for pid, (web, _, _) in self.backends.items() if not web)
        # The rest of what processes named postgres used: the ended backends are in there through the
        # postmaster, the live ones as processes of their own.
        self.others["postgres"] = max(0.0, self.others.get("postgres", 0.0) - sum(used.values()))
        self.ended_backends = sum(1 for pid in used if pid not in alive)


class WebLoad(threading.Thread):
    """The customers: starts when the pipeline's producer does, runs wrk for ``seconds``, meters CPU."""

    def __init__(self, *, args, bench, run: int, workers: Managed, gunicorn: Managed, base_url: str, files: dict):
        super().__init__(daemon=True)
        self.args, self.bench, self.run_id = args, bench, run
        self.workers, self.gunicorn, self.base_url, self.files = workers, gunicorn, base_url, files
        self.results: dict[str, dict] = {}
        self.meter: MixedCpuMeter | None = None
        self.profile: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def _wrk(self, kind: str, connections: int, rate: float) -> Managed:
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{self.args.seconds}s", "--timeout", "10s", "-s", str(LUA_SCRIPT),
            self.base_url, "--", kind, str(self.files[kind]), f"{rate:g}", str(connections),
        ]  # fmt: skip
        return Managed(
            f"wrk-{kind}", command, env=dict(os.environ), log=self.bench.workdir / f"wrk-{kind}-{self.run_id}.log"
        )

    def _run(self) -> None:
        if self.workers is not None:
            # The latency phase starts its producer as soon as the consumers hold every shard.
            self.bench.wait_balanced(f"bench-live-{self.run_id}", timeout=120)
        loads = {
            "poll": self._wrk("poll", self.args.poll_connections, self.args.pages / self.args.poll_seconds),
            "view": self._wrk("view", self.args.view_connections, self.args.views_per_second),
        }
        started = time.monotonic()
        components = {"gunicorn": self.gunicorn, "wrk": list(loads.values())}
        if self.workers is not None:
            components.update(
                consumers=[m for m in Managed.registry if m.name.startswith(f"bench-r{self.run_id}l-")],
                workers=self.workers,
                kinesalite=self.bench.kinesalite.process.pid,
            )
        self.meter = MixedCpuMeter(self.bench.admin_dsn, self.args.database, components)
        self.meter.start()
        profiler = None
        if self.args.profile:
            outdir = Path(self.args.profile)
            outdir.mkdir(parents=True, exist_ok=True)
            profiler = kinesis_bench.Profiler(
                outdir, f"r{self.run_id}-gunicorn", [self.gunicorn.pid], subprocesses=True
            )
        # Read the CPU times while wrk still runs: an exited process has none left to read.
        time.sleep(max(0.0, started + self.args.seconds - time.monotonic()))
        self.meter.stop()
        if profiler is not None:
            profiler.stop()
            self.profile = kinesis_bench.profile_summary(profiler.stacks(), top=40)
        for kind, load in loads.items():
            if load.process.wait(timeout=60) != 0:
                raise RuntimeError(f"wrk ({kind}) failed: {load.log.read_text()[-2000:]}")
            lines = [line for line in load.log.read_text().splitlines() if line.startswith("MIXED-LOAD ")]
            if not lines:
                raise RuntimeError(f"wrk ({kind}) printed no result: {load.log.read_text()[-2000:]}")
            self.results[kind] = json.loads(lines[-1].split(" ", 1)[1])
            load.stop()


# --- one run ------------------------------------------------------------------------------------
def mixed_run(args, bench, number: int, run_id: int, gunicorn: Managed, base_url: str, pages, views) -> dict:
    """The web load and, unless ``--rate 0``, the pipeline's latency phase at the same time."""
    log(f"run {number}")
    started = time.monotonic()
    urls = live_urls(base_url, pages)
    log(f"  {len(pages)} open pages loaded for their poll URLs in {time.monotonic() - started:.1f} s")
    files = {
        "poll": write_pages(bench.workdir / f"polls-{run_id}.tsv", list(zip(urls, pages, strict=True))),
        "view": write_pages(bench.workdir / f"views-{run_id}.tsv", [(page.path, page) for page in views]),
    }
    latency = None
    workers = None
    if args.rate > 0:
        workers = bench.start_workers(f"mixed-{run_id}", env=bench.env, queue=kinesis_bench.PIPELINE_QUEUE)
    web = WebLoad(
        args=args, bench=bench, run=run_id, workers=workers, gunicorn=gunicorn, base_url=base_url, files=files
    )
    try:
        if workers is None:
            web.run()
        else:
            web.start()
            latency = bench.latency(run_id, workers)
            web.join(timeout=args.seconds + 120)
    finally:
        if workers is not None:
            workers.stop()
    if web.error is not None:
        raise web.error
    if web.is_alive() or web.meter is None:
        raise RuntimeError("the web load did not finish")
    meter = web.meter
    result = {
        "poll": web.results["poll"],
        "view": web.results["view"],
        "pipeline": {key: value for key, value in latency.items() if key not in ("cpu", "others")} if latency else None,
        "cpu": dict(meter.result),
        "backends_ended": meter.ended_backends,
        "others": dict(meter.others),
        "wall": meter.wall,
        "machine_share": meter.machine_share,
        "gunicorn_rss_mb": sum(kinesis_bench.proc_status(pid, "VmRSS") for pid in gunicorn.pids()) / 1024,
    }
    for line in web.profile:
        print("    " + line, flush=True)
    p, v = result["poll"], result["view"]
    pipeline = (
        f"pipeline p95 {latency['p95']:.3f} s at {latency['offered_rate']:.0f} events/s" if latency else "no pipeline"
    )
    log(
        f"  polls: {p['requests']} p95 {p['percentiles_us']['95'] / 1000:.1f} ms; "
        f"views: {v['requests']} p95 {v['percentiles_us']['95'] / 1000:.1f} ms; {pipeline}; "
        f"machine {100 * meter.machine_share:.0f} % busy"
    )
    return result


# --- the report ---------------------------------------------------------------------------------
def errors(load: dict) -> int:
    socket_errors = sum(v for k, v in load["errors"].items() if k != "status")
    bad_answers = sum(count for status, count in load["statuses"].items() if not 200 <= int(status) < 400)
    return socket_errors + bad_answers


def report(args, runs: list[dict], info: dict) -> str:
    lines = [
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
        f"load average before {info['load_before']:.2f}, after {os.getloadavg()[0]:.2f}",
        f"data: {info['instances']:,} instances, {info['events']:,} inbox events (database {args.database})",
        f"web: gunicorn {info['gunicorn']}; {args.pages} open pages polling every {args.poll_seconds} s "
        f"({args.pages / args.poll_seconds:g} polls/s over {args.poll_connections} connections), "
        f"{args.views_per_second:g} page views/s of distinct links ({args.view_connections} connections), "
        f"{args.seconds} s a run",
        f"pipeline: {info['pipeline'] if args.rate > 0 else 'not running (--rate 0)'}",
        "",
        "| figure | " + " | ".join(f"run {i}" for i in range(1, len(runs) + 1)) + " | median | target |",
        "|" + " --- |" * (len(runs) + 3),
    ]

    def row(name: str, values: list[float], fmt: str, target: str = "") -> None:
        cells = " | ".join(format(v, fmt) for v in values)
        lines.append(f"| {name} | {cells} | {format(statistics.median(values), fmt)} | {target} |")

    for kind, label in (("poll", "poll"), ("view", "page view")):
        loads = [r[kind] for r in runs]
        row(f"{label}s/s", [x["requests"] / (x["duration_us"] / 1e6) for x in loads], ".1f")
        for cut in ("50", "95", "99"):
            target = f"< {TARGETS_MS[kind]}" if cut == "95" else ""
            row(f"{label} p{cut}, ms", [x["percentiles_us"][cut] / 1000 for x in loads], ".1f", target)
        row(f"{label} max, ms", [x["max_us"] / 1000 for x in loads], ".1f")
        row(f"{label} errors (socket errors, answers not 2xx/3xx)", [errors(x) for x in loads], ".0f", "0")
        row(f"{label}s sent late (every connection busy at its time)", [x["late"] for x in loads], ".0f")
    row("  polls answered 204 (nothing new)", [r["poll"]["statuses"].get("204", 0) for r in runs], ".0f")
    row("  polls answered 200 (fragment)", [r["poll"]["statuses"].get("200", 0) for r in runs], ".0f")
    if args.rate > 0:
        lat = [r["pipeline"] for r in runs]
        row("pipeline offered events/s", [x["offered_rate"] for x in lat], ".0f", f"{args.rate:g}")
        row("pipeline p50, s (put -> processed_at)", [x["p50"] for x in lat], ".3f")
        row("pipeline p95, s (put -> processed_at)", [x["p95"] for x in lat], ".3f", f"< {PIPELINE_TARGET_S}")
        row("pipeline p99, s", [x["p99"] for x in lat], ".3f")
        row("pipeline p95, s (put -> commit)", [x["visible_p95"] for x in lat], ".3f")
    for name in ("gunicorn", "postgres, web", "postgres, pipeline", "consumers", "workers", "kinesalite", "wrk"):
        row(f"CPU {name}, % of a core", [100 * r["cpu"].get(name, 0.0) / r["wall"] for r in runs], ".0f")
    named = {
        "postgres": "postgres, the rest (autovacuum, checkpoints, WAL, other databases)",
        "redis-server": "redis-server",
        "this script": "this script (producer, listener)",
    }
    for name, label in named.items():
        row(f"CPU {label}, % of a core", [100 * r["others"].get(name, 0.0) / r["wall"] for r in runs], ".0f")
    row(
        "CPU everything else, % of a core",
        [100 * sum(v for k, v in r["others"].items() if k not in named) / r["wall"] for r in runs],
        ".0f",
    )
    row("machine CPU busy, %", [100 * r["machine_share"] for r in runs], ".0f")
    row("gunicorn RSS (master and workers), MB", [r["gunicorn_rss_mb"] for r in runs], ".0f")
    lines.append("")
    for number, r in enumerate(runs, start=1):
        top = sorted(r["others"].items(), key=lambda item: -item[1])[:6]
        listed = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in top if cpu >= 0.05)
        statuses = {kind: r[kind]["statuses"] for kind in ("poll", "view")}
        lines.append(
            f"- run {number}: answers {statuses} ({r['poll']['unmatched']} fragments without a poll URL); "
            f"worst delay of a late request {max(r['poll']['worst_late_ms'], r['view']['worst_late_ms']):.0f} ms; "
            f"{r['backends_ended']} database connections renewed; "
            f"other processes: {listed}"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    print("command: " + " ".join([Path(kinesis_bench.PYTHON).name, *sys.argv]), flush=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    signal.signal(signal.SIGTERM, kinesis_bench._interrupted)
    load_before = os.getloadavg()[0]
    # This process makes the customers' links: the same key and settings as the web tier.
    for key in ("SECRET_KEY", "STATUSTRACKER_VAR_DIR", "CELERY_BROKER_URL", "NUM_PROXIES"):
        os.environ[key] = web_environment(args)[key]
    generate = args.generate or not database_exists(args)
    if generate:
        page_bench.ensure_database(args)
    page_bench.setup_django(args)
    if generate:
        log(f"generating {args.instances:,} instances with {args.events_per_instance} events each")
        page_bench.generate(args)
    elif page_bench.stored_timings() is None:
        raise SystemExit(f"database {args.database} was not made by the generator: run with --generate")
    with psycopg.connect(f"host={args.host} user={args.user} dbname={args.database}", autocommit=True) as conn:
        conn.execute(kinesis_bench.TRIGGER_SQL)
        instances = conn.execute("SELECT count(*) FROM tracking_processinstance").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM tracking_inboxevent").fetchone()[0]
    views_needed = int(args.views_per_second * args.seconds * 1.2) + 10
    pages, views = customer_pages(args, views_needed * args.runs)
    log(f"{instances:,} instances, {events:,} events; {len(pages)} open pages, {len(views)} links to view")

    pipeline_args = pipeline_settings(args)
    base_id = int(time.time()) % 10**8 * 10  # event and transaction ids of each run are new to the database
    with tempfile.TemporaryDirectory(prefix="mixed-load-") as tmp:
        workdir = Path(args.logs or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        bench = kinesis_bench.Bench(pipeline_args, workdir)
        bench.env.update(
            {"SECRET_KEY": SECRET_KEY, "STATUSTRACKER_VAR_DIR": str(ROOT / "var" / "mixed"), "LOG_LEVEL": "WARNING"}
        )
        runs = []
        try:
            bench.kinesalite = Kinesalite(log_path=workdir / "kinesalite.log").start()
            bench.client = bench.kinesalite.client()
            gunicorn, base_url = start_gunicorn(args, workdir)
            for number in range(1, args.runs + 1):
                share = views[(number - 1) * views_needed : number * views_needed]
                runs.append(mixed_run(args, bench, number, base_id + number, gunicorn, base_url, pages, share))
        finally:
            bench.close()
    info = {
        "load_before": load_before,
        "instances": instances,
        "events": events,
        "gunicorn": f"--worker-class {args.worker_class} --workers {args.workers} --threads {args.threads} "
        f"--worker-tmp-dir /dev/shm {args.gunicorn_args}".strip(),
        "pipeline": f"{pipeline_args.shards} shards, {pipeline_args.consumers} consumers (batch "
        f"{pipeline_args.batch_size}), {pipeline_args.concurrency} worker processes, task batch "
        f"{pipeline_args.task_batch_size}, prefetch {pipeline_args.prefetch}, {args.rate:g} events/s offered "
        f"(first {pipeline_args.warmup:g} s left out)",
    }
    print()
    print(report(args, runs, info))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "info": info, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
