"""Put event envelopes on a stream with PutRecords, keeping each transaction's events in order.

The partition key is the transaction id, so one transaction's events land on one shard in the
order they were put. PutRecords can fail for some records of a request and not others; a failed
record is sent again, and to keep the order no request ever carries a second record of a
transaction whose earlier record has not been written yet (each request takes at most the first
unwritten record of every transaction).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tracking.arrival.kinesis.client import Backoff, call_with_retries

MAX_RECORDS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
LOOKAHEAD = 5000


@dataclass
class PublishReport:
    published: int = 0
    requests: int = 0
    retried_records: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


@dataclass(frozen=True)
class _Entry:
    line: int
    key: str
    data: bytes


def partition_key(envelope: object) -> str | None:
    """The transaction id of a native or CloudEvents envelope, or None when it has none."""
    if not isinstance(envelope, dict):
        return None
    key = envelope.get("subject") if "specversion" in envelope else envelope.get("transaction_id")
    if isinstance(key, str) and 1 <= len(key) <= 256:
        return key
    return None


def _entries(lines: Iterable[tuple[int, bytes]], *, raw: bool, report: PublishReport) -> Iterable[_Entry]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            key = partition_key(json.loads(line))
        except ValueError:
            key = None
        if key is None:
            if not raw:
                report.skipped.append((number, "not an envelope with a transaction id"))
                continue
            # Published as it is, for the consumer to dead-letter: a test or demo of bad input.
            key = f"line-{number}"
        if len(line) + len(key.encode()) > MAX_RECORD_BYTES:
            report.skipped.append((number, "larger than 1 MiB, which Kinesis refuses"))
            continue
        yield _Entry(number, key, line)


def records_publish(
    *,
    client,
    stream: str,
    lines: Iterable[tuple[int, bytes]],
    raw: bool = False,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> PublishReport:
    """Publish numbered lines; failed records are retried with backoff until written."""
    report = PublishReport()
    source = iter(_entries(lines, raw=raw, report=report))
    pending: list[_Entry] = []
    exhausted = False
    backoff = Backoff(base=0.1, cap=2.0)
    while True:
        while not exhausted and len(pending) < LOOKAHEAD:
            entry = next(source, None)
            if entry is None:
                exhausted = True
            else:
                pending.append(entry)
        if not pending:
            return report
        batch = _next_request(pending)
        response = call_with_retries(
            lambda batch=batch: client.put_records(
                StreamName=stream, Records=[{"Data": e.data, "PartitionKey": e.key} for e in batch]
            ),
            stop=stop,
        )
        report.requests += 1
        written = {id(e) for e, result in zip(batch, response["Records"], strict=True) if "ErrorCode" not in result}
        failed = len(batch) - len(written)
        pending = [e for e in pending if id(e) not in written]
        report.published += len(written)
        if on_progress and written:
            on_progress(len(written))
        if failed:
            report.retried_records += failed
            delay = backoff.next_delay()
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
        else:
            backoff.reset()


def _next_request(pending: list[_Entry]) -> list[_Entry]:
    """Up to 500 records and 5 MiB, at most the first pending record of each transaction."""
    batch: list[_Entry] = []
    seen: set[str] = set()
    size = 0
    for entry in pending:
        if entry.key in seen:
            continue
        seen.add(entry.key)
        entry_size = len(entry.data) + len(entry.key.encode())
        if len(batch) == MAX_RECORDS_PER_REQUEST or size + entry_size > MAX_REQUEST_BYTES:
            break
        batch.append(entry)
        size += entry_size
    return batch
