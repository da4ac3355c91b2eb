"""The Kinesis consumer: every shard this worker holds a lease on, read into the event inbox.

One thread runs one loop. Each turn it renews its leases, takes or asks for leases to reach its
fair share, and polls every held shard that is due; a batch of records and its checkpoint are
stored in one database transaction (``services.shard_batch_store``). Because there is one thread,
a lease is never renewed, handed over or released while a batch of it is in hand.

``start`` runs until ``stop`` is called (the management command calls it from its SIGTERM and
SIGINT handlers); the batch in hand is finished and checkpointed, then the leases are released.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from botocore.exceptions import ClientError
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connections

from tracking.arrival.ingest import CONFLICT, REJECTED
from tracking.arrival.kinesis import metrics
from tracking.arrival.kinesis.client import Backoff, error_code, failure_kind, is_retryable
from tracking.arrival.kinesis.leases import (
    HeldLease,
    LeaseLost,
    lease_adopt,
    lease_finish,
    lease_release,
    lease_request,
    lease_take,
    lease_views,
    leases_renew,
    leases_sync,
    plan_balance,
)
from tracking.arrival.kinesis.services import UserRecord, shard_batch_store, shard_record_dead_letter

logger = logging.getLogger(__name__)

INITIAL_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
# Errors that mean the database is unreachable, as opposed to refusing particular rows.
DATABASE_OUTAGE = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class ConsumerSettings:
    stream: str
    worker_id: str
    batch_size: int = 500
    lease_duration: timedelta = timedelta(seconds=10)
    initial_position: str = "TRIM_HORIZON"
    start_timestamp: datetime | None = None
    shard_sync_interval: float = 10.0
    # Kinesis allows 5 GetRecords calls per second per shard.
    min_poll_interval: float = 0.2
    # An idle shard is polled less and less often, down to once per this many seconds.
    idle_poll_interval: float = 1.0
    progress_interval: float = 30.0

    def __post_init__(self):
        if self.initial_position not in INITIAL_POSITIONS:
            raise ValueError(f"initial position must be one of {', '.join(INITIAL_POSITIONS)}")
        if self.initial_position == "AT_TIMESTAMP" and self.start_timestamp is None:
            raise ValueError("AT_TIMESTAMP needs a start time")
        if not 1 <= self.batch_size <= 10000:
            raise ValueError("batch size must be 1 to 10000")
        if self.lease_duration < timedelta(seconds=1):
            raise ValueError("lease duration must be at least one second")


@dataclass
class ShardReader:
    """A held shard: its lease, where the reading stands, and when to poll it next."""

    lease: HeldLease
    iterator: str | None = None
    next_poll_at: float = 0.0
    last_call_at: float = float("-inf")
    idle_delay: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    millis_behind: int | None = None
    total: int = 0
    window_records: int = 0
    window_started: float = field(default_factory=time.monotonic)
    rate: float = 0.0

    def measure_rate(self, now: float) -> float:
        elapsed = now - self.window_started
        if elapsed >= 1.0:
            self.rate = self.window_records / elapsed
            self.window_records, self.window_started = 0, now
        return self.rate


def user_records(records: Sequence[dict]) -> list[UserRecord]:
    """GetRecords entries -> user records, KPL aggregates split into theirs (with sub-sequence numbers)."""
    result = []
    for entry in iter_deaggregate_records(list(records), data_format="Boto3"):
        kinesis = entry["kinesis"]
        if kinesis.get("aggregated"):
            # The library hands aggregated user records back base64-encoded, plain ones as they came.
            result.append(
                UserRecord(
                    kinesis["sequenceNumber"],
                    kinesis["subSequenceNumber"],
                    base64.b64decode(kinesis["data"]),
                    aggregated=True,
                    partition_key=kinesis.get("partitionKey") or "",
                )
            )
        else:
            result.append(
                UserRecord(kinesis["sequenceNumber"], 0, kinesis["data"], partition_key=kinesis["partitionKey"])
            )
    return result


def _chunks(records: Sequence[UserRecord], size: int) -> Iterable[Sequence[UserRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


class KinesisConsumer:
    def __init__(self, *, settings: ConsumerSettings, client):
        self.settings = settings
        self.client = client
        self.readers: dict[str, ShardReader] = {}
        self._stop = threading.Event()
        self._next_sync = 0.0
        self._next_renew = 0.0
        self._next_take = 0.0
        self._next_progress = time.monotonic() + settings.progress_interval
        self._sync_backoff = Backoff(base=1.0, cap=30.0)
        self._log = {"worker": settings.worker_id, "stream": settings.stream}

    # --- life cycle -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end after the batch in hand; safe to call from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        """Run until ``stop``; then release every lease. Database outages are waited out."""
        logger.info("consumer started", extra={**self._log, "event": "started"})
        outage = Backoff(base=0.5, cap=15.0)
        try:
            while not self._stop.is_set():
                try:
                    close_old_connections()
                    self.run_once()
                    outage.reset()
                except DATABASE_OUTAGE as exc:
                    self._wait_out_outage(exc, outage)
                    continue
                self._sleep_until_due()
        finally:
            self.shutdown()
        logger.info("consumer stopped", extra={**self._log, "event": "stopped"})

    def _wait_out_outage(self, exc: Exception, outage: Backoff) -> None:
        # Positions are re-read from the checkpoints once the database is back: a batch that
        # was read but not stored is read again, and no checkpoint has moved past it.
        for reader in self.readers.values():
            reader.iterator = None
        delay = outage.next_delay()
        logger.warning(
            "database unavailable or refusing (%s); reading again from the checkpoints in %.1fs",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            delay,
            extra={**self._log, "event": "database_unavailable", "delay": round(delay, 3)},
        )
        connections.close_all()
        self._stop.wait(delay)

    def shutdown(self) -> None:
        """Release every held lease so that other workers take the shards at once."""
        for shard_id in list(self.readers):
            reader = self.readers.pop(shard_id)
            try:
                lease_release(lease=reader.lease, worker=self.settings.worker_id, duration=self.settings.lease_duration)
            except DatabaseError as exc:
                logger.warning(
                    "could not release %s (%s); it expires on its own",
                    shard_id,
                    exc,
                    extra={**self._log, "event": "release_failed", "shard": shard_id},
                )
                continue
            self._dropped(reader, "released")
        metrics.LEASES_HELD.labels(self.settings.stream).set(0)

    def run_once(self) -> None:
        """One turn of the loop: shard discovery, lease upkeep, then every shard that is due."""
        now = time.monotonic()
        if now >= self._next_sync:
            self.sync_shards()
        if now >= self._next_renew:
            self.renew_leases()
        if now >= self._next_take:
            self.balance_leases()
        for shard_id in sorted(self.readers):
            if self._stop.is_set():
                break
            reader = self.readers.get(shard_id)
            if reader is not None and reader.next_poll_at <= time.monotonic():
                self.poll(reader)
        if time.monotonic() >= self._next_progress:
            self.log_progress()

    def _sleep_until_due(self) -> None:
        due = [self._next_sync, self._next_renew, self._next_take, self._next_progress]
        due += [reader.next_poll_at for reader in self.readers.values()]
        delay = min(due) - time.monotonic()
        if delay > 0:
            self._stop.wait(min(delay, 1.0))

    # --- shards and leases ------------------------------------------------------------------------
    def sync_shards(self) -> None:
        """List the stream's shards and add a lease for each new one (resharding creates shards)."""
        try:
            shards = self._list_shards()
        except ClientError as exc:
            delay = self._sync_backoff.next_delay() if is_retryable(exc) else self.settings.shard_sync_interval
            logger.warning(
                "could not list shards: %s",
                exc,
                extra={**self._log, "event": "list_shards_failed", "cause": error_code(exc), "delay": delay},
            )
            self._next_sync = time.monotonic() + delay
            return
        except Exception as exc:
            if not is_retryable(exc):
                raise
            delay = self._sync_backoff.next_delay()
            logger.warning("could not list shards: %s", exc, extra={**self._log, "event": "list_shards_failed"})
            self._next_sync = time.monotonic() + delay
            return
        self._sync_backoff.reset()
        added = leases_sync(stream=self.settings.stream, shards=shards)
        if added:
            logger.info("found %d new shards", added, extra={**self._log, "event": "shards_found", "records": added})
            self._next_take = 0.0
        self._next_sync = time.monotonic() + self.settings.shard_sync_interval

    def _list_shards(self) -> list[dict]:
        shards: list[dict] = []
        response = self.client.list_shards(StreamName=self.settings.stream)
        shards.extend(response["Shards"])
        while response.get("NextToken"):
            response = self.client.list_shards(NextToken=response["NextToken"])
            shards.extend(response["Shards"])
        return shards

    def renew_leases(self) -> None:
        now = time.monotonic()
        stats = {
            shard_id: {"millis_behind_latest": reader.millis_behind, "records_per_second": reader.measure_rate(now)}
            for shard_id, reader in self.readers.items()
        }
        result = leases_renew(
            stream=self.settings.stream,
            worker=self.settings.worker_id,
            held={shard_id: reader.lease for shard_id, reader in self.readers.items()},
            duration=self.settings.lease_duration,
            stats=stats,
        )
        for shard_id in result.lost:
            self._dropped(self.readers.pop(shard_id), "lost")
        for shard_id, to_worker in result.requested.items():
            reader = self.readers.pop(shard_id)
            lease_release(lease=reader.lease, worker=self.settings.worker_id, duration=self.settings.lease_duration)
            self._dropped(reader, "handed_over", to_worker=to_worker)
        for lease_id, counter in result.handed_to_us:
            held = lease_adopt(
                lease_id=lease_id,
                counter=counter,
                worker=self.settings.worker_id,
                duration=self.settings.lease_duration,
            )
            if held is not None:
                self._acquired(held, "adopted")
        self._next_renew = time.monotonic() + self.settings.lease_duration.total_seconds() / 3

    def balance_leases(self) -> None:
        plan = plan_balance(views=lease_views(stream=self.settings.stream), worker=self.settings.worker_id)
        for view in plan.take:
            held = lease_take(view=view, worker=self.settings.worker_id, duration=self.settings.lease_duration)
            if held is not None:
                self._acquired(held, "taken")
        for view in plan.request:
            if lease_request(view=view, worker=self.settings.worker_id):
                logger.info(
                    "asked %s to hand over %s",
                    view.owner,
                    view.shard_id,
                    extra={**self._log, "event": "lease_requested", "shard": view.shard_id, "to_worker": view.owner},
                )
        # Jitter keeps workers started together from balancing in step.
        period = self.settings.lease_duration.total_seconds() / 2
        self._next_take = time.monotonic() + period * random.uniform(0.8, 1.2)  # noqa: S311

    def _acquired(self, held: HeldLease, how: str) -> None:
        self.readers[held.shard_id] = ShardReader(lease=held)
        metrics.LEASE_CHANGES.labels(self.settings.stream, how).inc()
        metrics.LEASES_HELD.labels(self.settings.stream).set(len(self.readers))
        logger.info(
            "lease %s %s at checkpoint %s/%s",
            held.shard_id,
            how,
            held.checkpoint_sequence or "-",
            held.checkpoint_sub_sequence,
            extra={
                **self._log,
                "event": "lease_acquired",
                "reason": how,
                "shard": held.shard_id,
                "lease_counter": held.counter,
                "sequence": held.checkpoint_sequence,
                "sub_sequence": held.checkpoint_sub_sequence,
            },
        )

    def _dropped(self, reader: ShardReader, how: str, *, to_worker: str = "") -> None:
        self.readers.pop(reader.lease.shard_id, None)
        metrics.LEASE_CHANGES.labels(self.settings.stream, how).inc()
        metrics.LEASES_HELD.labels(self.settings.stream).set(len(self.readers))
        level = logging.WARNING if how in ("lost", "expired") else logging.INFO
        logger.log(
            level,
            "lease %s %s%s",
            reader.lease.shard_id,
            how.replace("_", " "),
            f" to {to_worker}" if to_worker else "",
            extra={
                **self._log,
                "event": "lease_dropped",
                "reason": how,
                "shard": reader.lease.shard_id,
                "to_worker": to_worker,
                "sequence": reader.lease.checkpoint_sequence,
                "sub_sequence": reader.lease.checkpoint_sub_sequence,
            },
        )

    # --- reading ------------------------------------------------------------------------------------
    def _iterator_arguments(self, lease: HeldLease) -> dict:
        if lease.checkpoint is not None:
            # AT, not AFTER: an aggregated record may be checkpointed half way; the user records up
            # to the checkpoint are skipped when they come back.
            return {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": lease.checkpoint_sequence}
        if lease.has_parent_leases:
            # A child of a shard we read: it holds the records written after the reshard.
            return {"ShardIteratorType": "TRIM_HORIZON"}
        if self.settings.initial_position == "AT_TIMESTAMP":
            return {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": self.settings.start_timestamp}
        return {"ShardIteratorType": self.settings.initial_position}

    def poll(self, reader: ShardReader) -> None:
        """One GetRecords call on a held shard, and the batches it brings."""
        lease = reader.lease
        if time.monotonic() >= lease.deadline:
            self._dropped(reader, "expired")
            return
        wait = reader.last_call_at + self.settings.min_poll_interval - time.monotonic()
        if wait > 0:
            reader.next_poll_at = time.monotonic() + wait
            return
        reader.last_call_at = time.monotonic()
        started = time.time()
        try:
            if reader.iterator is None:
                reader.iterator = self.client.get_shard_iterator(
                    StreamName=self.settings.stream, ShardId=lease.shard_id, **self._iterator_arguments(lease)
                )["ShardIterator"]
            response = self.client.get_records(ShardIterator=reader.iterator, Limit=self.settings.batch_size)
        except Exception as exc:
            self._read_failed(reader, exc)
            return
        reader.backoff.reset()
        if time.monotonic() >= lease.deadline:
            # The lease may belong to another worker by now: do not act on what was read.
            self._dropped(reader, "expired")
            return
        reader.millis_behind = response.get("MillisBehindLatest")
        metrics.MILLIS_BEHIND.labels(self.settings.stream, lease.shard_id).set(reader.millis_behind or 0)
        records = [r for r in user_records(response["Records"]) if self._after_checkpoint(lease, r)]
        logger.debug(
            "read %d records from %s",
            len(records),
            lease.shard_id,
            extra={
                **self._log,
                "event": "read",
                "shard": lease.shard_id,
                "records": len(records),
                "started": started,
                "millis_behind": reader.millis_behind,
            },
        )
        chunks = list(_chunks(records, self.settings.batch_size))
        for number, chunk in enumerate(chunks, start=1):
            try:
                self.process_batch(reader, chunk)
            except LeaseLost:
                self._dropped(reader, "lost")
                return
            if self._stop.is_set() and number < len(chunks):
                reader.iterator = None
                return
        next_iterator = response.get("NextShardIterator")
        if not next_iterator:
            self._finish(reader)
            return
        reader.iterator = next_iterator
        if response["Records"]:
            reader.idle_delay = 0.0
            reader.next_poll_at = reader.last_call_at + self.settings.min_poll_interval
        else:
            reader.idle_delay = min(
                max(reader.idle_delay * 2, self.settings.min_poll_interval), self.settings.idle_poll_interval
            )
            reader.next_poll_at = time.monotonic() + reader.idle_delay

    @staticmethod
    def _after_checkpoint(lease: HeldLease, record: UserRecord) -> bool:
        checkpoint = lease.checkpoint
        return checkpoint is None or record.position > checkpoint

    def _read_failed(self, reader: ShardReader, exc: Exception) -> None:
        shard_id = reader.lease.shard_id
        code = error_code(exc)
        if code == "ExpiredIteratorException":
            # A new iterator from the checkpoint: what was read since is read again, not skipped.
            reader.iterator = None
            reader.next_poll_at = time.monotonic()
            metrics.RETRIES.labels(self.settings.stream, "expired_iterator").inc()
            logger.info(
                "iterator of %s expired; starting again from the checkpoint",
                shard_id,
                extra={**self._log, "event": "retry", "cause": "expired_iterator", "shard": shard_id},
            )
            return
        delay = reader.backoff.next_delay()
        reader.next_poll_at = time.monotonic() + delay
        if is_retryable(exc):
            cause = failure_kind(exc)
            metrics.RETRIES.labels(self.settings.stream, cause).inc()
            logger.info(
                "reading %s: %s; retrying in %.2fs",
                shard_id,
                code or type(exc).__name__,
                delay,
                extra={**self._log, "event": "retry", "cause": cause, "shard": shard_id, "delay": round(delay, 3)},
            )
            return
        if not isinstance(exc, ClientError):
            raise exc
        # Not a passing condition (a deleted stream, a checkpoint that does not belong to the
        # shard): keep trying slowly and say so loudly.
        reader.iterator = None
        metrics.RETRIES.labels(self.settings.stream, "client_error").inc()
        logger.error(
            "reading %s: %s",
            shard_id,
            exc,
            extra={**self._log, "event": "read_failed", "cause": code, "shard": shard_id, "delay": round(delay, 3)},
        )

    def process_batch(self, reader: ShardReader, records: Sequence[UserRecord]) -> None:
        """Store records in the inbox with their checkpoint; isolate records the database refuses.

        Invalid envelopes are dead-lettered by ``events_ingest`` inside the batch. A batch that
        fails as a whole for another reason than a database outage is split in halves until the
        record at fault is found and dead-lettered with the error (Lambda's "bisect on error").
        Raises ``LeaseLost`` when the lease was taken over: nothing of the batch is stored.
        """
        if not records:
            return
        lease = reader.lease
        started = time.monotonic()
        try:
            results = shard_batch_store(
                lease=lease, worker=self.settings.worker_id, records=records, millis_behind=reader.millis_behind
            )
        except (LeaseLost, *DATABASE_OUTAGE):
            raise
        except Exception as exc:
            if len(records) > 1:
                middle = len(records) // 2
                self.process_batch(reader, records[:middle])
                self.process_batch(reader, records[middle:])
                return
            record = records[0]
            reason = f"could not be stored: {type(exc).__name__}: {exc}"
            logger.error(
                "dead-lettering %s/%s: %s",
                record.sequence,
                record.sub_sequence,
                reason,
                extra={
                    **self._log,
                    "event": "dead_letter",
                    "shard": lease.shard_id,
                    "sequence": record.sequence,
                    "sub_sequence": record.sub_sequence,
                    "reason": reason,
                },
            )
            shard_record_dead_letter(
                lease=lease,
                worker=self.settings.worker_id,
                record=record,
                reason=reason,
                millis_behind=reader.millis_behind,
            )
            results = []
            metrics.REJECTED.labels(self.settings.stream, lease.shard_id).inc()
        last = records[-1]
        lease.checkpoint_sequence, lease.checkpoint_sub_sequence = last.sequence, last.sub_sequence
        reader.total += len(records)
        reader.window_records += len(records)
        metrics.RECORDS.labels(self.settings.stream, lease.shard_id).inc(len(records))
        metrics.BATCH_SECONDS.labels(self.settings.stream).observe(time.monotonic() - started)
        for record, result in zip(records, results, strict=False):
            # A conflict (an event id reused with another body) is kept as a dead letter too.
            if result.status in (REJECTED, CONFLICT):
                metrics.REJECTED.labels(self.settings.stream, lease.shard_id).inc()
                logger.warning(
                    "dead-lettered %s: %s%s",
                    record.reference(stream=lease.stream, shard_id=lease.shard_id),
                    f"{result.field}: " if result.field else "",
                    result.reason,
                    extra={
                        **self._log,
                        "event": "dead_letter",
                        "shard": lease.shard_id,
                        "sequence": record.sequence,
                        "sub_sequence": record.sub_sequence,
                        "reason": result.reason,
                    },
                )

    def _finish(self, reader: ShardReader) -> None:
        """The shard is closed and fully read: mark it so its children can start."""
        try:
            lease_finish(lease=reader.lease, worker=self.settings.worker_id)
        except LeaseLost:
            self._dropped(reader, "lost")
            return
        self._dropped(reader, "finished")
        # Its children may be readable now.
        self._next_sync = 0.0
        self._next_take = 0.0

    def log_progress(self) -> None:
        now = time.monotonic()
        shards = {
            shard_id: {
                "records": reader.total,
                "rate": round(reader.measure_rate(now), 1),
                "millis_behind": reader.millis_behind,
                "sequence": reader.lease.checkpoint_sequence,
            }
            for shard_id, reader in sorted(self.readers.items())
        }
        summary = "; ".join(
            f"{shard_id}: {s['records']} records, {s['rate']}/s, {s['millis_behind']} ms behind"
            for shard_id, s in shards.items()
        )
        logger.info(
            "progress: %s", summary or "no shards held", extra={**self._log, "event": "progress", "shards": shards}
        )
        self._next_progress = now + self.settings.progress_interval
