"""Fixtures for the Kinesis tests: kinesalite on loopback, consumer processes, a fault-injecting proxy.

Everything talks HTTP: the consumers are real ``manage.py consume_kinesis`` processes, kinesalite
is the npm package started on 127.0.0.1, and faults are injected by a proxy between the two that
answers some calls the way Kinesis does when it throttles, fails or expires an iterator.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT, _database_url
from tests.json_lines import json_lines
from tests.order_stream import order_events as order_events
from tests.reference_replay import replay
from tracking.arrival.kinesis.emulator import LOCAL_CREDENTIALS, Kinesalite
from tracking.arrival.kinesis.producer import records_publish
from tracking.arrival.kinesis.streams import stream_create
from tracking.models import InboxEvent, ProcessInstance

LEASE_SECONDS = 4.0


# --- kinesalite -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kinesalite(tmp_path_factory):
    server = Kinesalite(log_path=tmp_path_factory.mktemp("kinesalite") / "kinesalite.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kinesis(kinesalite):
    return kinesalite.client()


@pytest.fixture
def local_aws_env(monkeypatch):
    """Dummy credentials and region for clients that the code under test makes itself."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", LOCAL_CREDENTIALS["region_name"])


@pytest.fixture
def new_stream(kinesis):
    """Create a stream with a unique name; returns its name."""

    def create(*, shards: int) -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        stream_create(kinesis, name=name, shards=shards)
        return name

    return create


# --- consumer processes ----------------------------------------------------------------------------
class ConsumerProcess:
    """A real ``manage.py consume_kinesis`` process on the test database; its JSON log is kept."""

    def __init__(self, *, stream: str, endpoint_url: str, worker_id: str, log_path: Path, args: Iterable[str] = ()):
        self.worker_id = worker_id
        self.log_path = log_path
        self.killed_at: float | None = None
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
        }
        command = [
            sys.executable,
            "manage.py",
            "consume_kinesis",
            f"--stream={stream}",
            f"--endpoint-url={endpoint_url}",
            f"--worker-id={worker_id}",
            f"--lease-duration={LEASE_SECONDS}",
            "--shard-sync-interval=1",
            "--idle-poll-interval=0.5",
            "--progress-interval=5",
            "--log-format=json",
            "--log-level=DEBUG",
            *args,
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def terminate(self, *, timeout: float = 60) -> int:
        """SIGTERM; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.killed_at = time.time()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def log(self) -> list[dict]:
        return json_lines(self.log_path)

    def events(self, name: str) -> list[dict]:
        return [entry for entry in self.log() if entry.get("event") == name]


@pytest.fixture
def start_consumer(transactional_db, kinesalite, tmp_path):
    consumers: list[ConsumerProcess] = []

    def start(stream: str, *, endpoint_url: str | None = None, worker_id: str | None = None, args=()):
        worker_id = worker_id or f"consumer-{len(consumers) + 1}"
        consumer = ConsumerProcess(
            stream=stream,
            endpoint_url=endpoint_url or kinesalite.endpoint_url,
            worker_id=worker_id,
            log_path=tmp_path / f"{worker_id}-{len(consumers)}.log",
            args=args,
        )
        consumers.append(consumer)
        return consumer

    yield start
    for consumer in consumers:
        consumer.close()


# --- a proxy that injects Kinesis faults -----------------------------------------------------------
ERRORS = {
    "throttle": (400, "ProvisionedThroughputExceededException", "Rate exceeded for shard"),
    "limit": (400, "LimitExceededException", "Rate exceeded for stream"),
    "internal": (500, "InternalFailure", "Internal service failure"),
    "unavailable": (503, "ServiceUnavailable", "Service unavailable"),
    "expired": (400, "ExpiredIteratorException", "Iterator expired"),
}


@dataclass
class FaultPlan:
    """Per operation, the chance of each fault, and faults that surely happen.

    ``forced`` faults are given, in order, to every other call of the operation from the start, so
    that each kind is certain to occur whatever the random draws; ``rates`` apply to the rest.
    """

    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    forced: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 7


class FaultProxy:
    """An HTTP proxy to kinesalite that answers some calls with Kinesis errors or drops the connection.

    Faults: ``throttle``, ``limit``, ``internal``, ``unavailable``, ``expired`` (GetRecords only),
    ``reset`` (connection closed without an answer), ``lose_response`` (the call reaches the server,
    the answer is replaced by a 500) and ``partial`` (PutRecords: some records refused as throttled).
    ``injected`` counts what was done, so that a test can show the faults happened.
    """

    def __init__(self, upstream_port: int, plan: FaultPlan):
        self.upstream_port = upstream_port
        self.plan = plan
        self.random = random.Random(plan.seed)
        self.lock = threading.Lock()
        self.injected: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.forced = {operation: list(faults) for operation, faults in plan.forced.items()}
        self.enabled = True
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _choose(self, operation: str) -> str:
        if not self.enabled:
            return "forward"
        with self.lock:
            self.calls[operation] += 1
            if self.forced.get(operation) and self.calls[operation] % 2:
                return self.forced[operation].pop(0)
            roll = self.random.random()
        for fault, rate in self.plan.rates.get(operation, {}).items():
            if roll < rate:
                return fault
            roll -= rate
        return "forward"

    def _count(self, what: str) -> None:
        with self.lock:
            self.injected[what] += 1

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        fault = self._choose(operation)
        if fault != "forward":
            self._count(f"{operation}:{fault}")
        if fault == "reset":
            request.close_connection = True
            request.connection.close()
            return
        if fault in ERRORS:
            status, code, message = ERRORS[fault]
            return self._answer(request, status, {"__type": code, "message": message})
        if fault == "partial" and operation == "PutRecords":
            return self._partial_put(request, body)
        status, headers, payload = self._forward(request, body)
        if fault == "lose_response":
            status, code, message = ERRORS["internal"]
            return self._answer(request, status, {"__type": code, "message": message})
        request.send_response(status)
        for name, value in headers:
            if name.lower() in ("content-type", "x-amzn-requestid", "x-amz-id-2"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _forward(self, request, body: bytes):
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["Content-Length"] = str(len(body))
        connection.request("POST", request.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, response.getheaders(), payload

    def _partial_put(self, request, body: bytes) -> None:
        """Write a random part of the records and report the others as throttled, as Kinesis may."""
        document = json.loads(body)
        records = document["Records"]
        with self.lock:
            refused = {i for i in range(len(records)) if self.random.random() < 0.3}
        kept = [r for i, r in enumerate(records) if i not in refused]
        results: list[dict] = []
        upstream = iter([])
        if kept:
            status, _, payload = self._forward(request, json.dumps({**document, "Records": kept}).encode())
            if status != 200:
                request.send_response(status)
                request.send_header("Content-Length", str(len(payload)))
                request.end_headers()
                request.wfile.write(payload)
                return
            upstream = iter(json.loads(payload)["Records"])
        for i in range(len(records)):
            if i in refused:
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
                )
            else:
                results.append(next(upstream))
        self._answer(request, 200, {"FailedRecordCount": len(refused), "Records": results})

    @staticmethod
    def _answer(request, status: int, document: dict) -> None:
        payload = json.dumps(document).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/x-amz-json-1.1")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


@pytest.fixture
def fault_proxy(kinesalite):
    proxies: list[FaultProxy] = []

    def start(plan: FaultPlan) -> FaultProxy:
        proxy = FaultProxy(kinesalite.port, plan).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


# --- traffic and checks ----------------------------------------------------------------------------
def example_document() -> dict:
    return yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())


def publish(client, stream: str, envelopes: Iterable[dict]):
    lines = ((n, json.dumps(e).encode()) for n, e in enumerate(envelopes, start=1))
    return records_publish(client=client, stream=stream, lines=lines)


def read_stream(client, stream: str) -> dict[str, list[dict]]:
    """Every record of every shard (open or closed), in shard order, straight from kinesalite."""
    shards = client.list_shards(StreamName=stream)["Shards"]
    result: dict[str, list[dict]] = {}
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict] = []
        while iterator:
            response = client.get_records(ShardIterator=iterator, Limit=10000)
            records.extend(response["Records"])
            if not response["Records"]:
                if response.get("NextShardIterator") is None or response.get("MillisBehindLatest", 0) == 0:
                    break
            iterator = response.get("NextShardIterator")
        result[shard["ShardId"]] = records
    return result


def inbox_counts() -> tuple[int, int]:
    """(events stored, duplicates counted)."""
    rows = list(InboxEvent.objects.values_list("duplicate_count", flat=True))
    return len(rows), sum(rows)


def assert_matches_replay(envelopes: list[dict]) -> dict:
    """End states, contexts and each event's outcome equal a plain replay of the spec."""
    expected = replay(example_document(), envelopes)
    instances = {
        i.transaction_id: i
        for i in ProcessInstance.objects.filter(transaction_id__in=list(expected)).only(
            "transaction_id", "state", "context"
        )
    }
    outcomes = dict(
        InboxEvent.objects.filter(event_id__in={e["event_id"] for e in envelopes}).values_list("event_id", "status")
    )
    mismatches = []
    for transaction_id, result in expected.items():
        instance = instances.get(transaction_id)
        actual_state = (instance.state or None) if instance else None
        actual_context = instance.context if instance else {}
        if actual_state != result["state"] or actual_context != result["context"]:
            mismatches.append((transaction_id, actual_state, result["state"], actual_context, result["context"]))
        for event_id, outcome in result["outcomes"].items():
            if outcomes.get(event_id) != outcome:
                mismatches.append((event_id, outcomes.get(event_id), outcome))
    assert mismatches == [], f"{len(mismatches)} differences from the replay, first: {mismatches[:5]}"
    return expected


def assert_one_reader_at_a_time(consumers: list[ConsumerProcess]) -> int:
    """From the consumers' logs: reads of one shard by different workers never interleave.

    A worker's reads of a shard must follow its own acquisition of the lease, made after the
    previous reader's last read. Returns how many hand-overs between workers were seen.
    """
    reads: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    acquired: dict[tuple[str, str], list[float]] = defaultdict(list)
    for consumer in consumers:
        for entry in consumer.log():
            if entry.get("event") == "read":
                reads[entry["shard"]].append((entry["started"], entry["ts"], entry["worker"]))
            elif entry.get("event") == "lease_acquired":
                acquired[(entry["shard"], entry["worker"])].append(entry["ts"])
    handovers = 0
    for shard, shard_reads in reads.items():
        shard_reads.sort()
        previous_end, previous_worker = None, None
        for started, ended, worker in shard_reads:
            if worker != previous_worker:
                if previous_worker is not None:
                    handovers += 1
                    assert any(previous_end <= t <= started for t in acquired[(shard, worker)]), (
                        f"{worker} read {shard} at {started} without taking its lease after "
                        f"{previous_worker}'s last read at {previous_end}"
                    )
                else:
                    assert any(t <= started for t in acquired[(shard, worker)]), f"{worker} read {shard} unleased"
                previous_worker = worker
            elif previous_end is not None:
                assert started >= previous_end or worker == previous_worker
            previous_end = ended
    return handovers
