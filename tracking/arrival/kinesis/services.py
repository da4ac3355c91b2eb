"""Writes of the Kinesis consumer: a batch of records into the inbox together with its checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from tracking.arrival.ingest import IngestResult, RawEvent, events_ingest
from tracking.arrival.kinesis.leases import HeldLease, lease_checkpoint
from tracking.models import DeadLetter, SourceKind


@dataclass(frozen=True)
class UserRecord:
    """One user record of a shard: a plain Kinesis record, or one of a KPL aggregate's records.

    ``aggregated`` records share their Kinesis sequence number and differ by ``sub_sequence``.
    """

    sequence: str
    sub_sequence: int
    data: bytes
    aggregated: bool = False
    partition_key: str = ""

    @property
    def position(self) -> tuple[int, int]:
        return int(self.sequence), self.sub_sequence

    def reference(self, *, stream: str, shard_id: str) -> str:
        """``<stream>/<shard id>/<sequence number>``, with ``/<sub-sequence>`` for aggregated records.

        It is the record's source reference and, when the envelope has no ``event_id``, its event id
        (docs/spec/events.md), so a redelivered record is recognised as a duplicate.
        """
        base = f"{stream}/{shard_id}/{self.sequence}"
        return f"{base}/{self.sub_sequence}" if self.aggregated else base


def shard_batch_store(
    *, lease: HeldLease, worker: str, records: Sequence[UserRecord], millis_behind: int | None
) -> list[IngestResult]:
    """Store the records in the inbox and move the shard's checkpoint past them, in one transaction.

    A crash before the commit loses both (the records are read again from the old checkpoint), a
    crash after it keeps both: no record is lost or stored twice. Raises ``LeaseLost`` when the
    worker no longer holds the lease; then nothing is stored.
    """
    if not records:
        return []
    items = []
    for record in records:
        reference = record.reference(stream=lease.stream, shard_id=lease.shard_id)
        items.append(RawEvent(record.data, source_ref=reference, default_event_id=reference))
    last = records[-1]
    with transaction.atomic():
        results = events_ingest(items=items, source_kind=SourceKind.KINESIS)
        lease_checkpoint(
            lease=lease,
            worker=worker,
            sequence=last.sequence,
            sub_sequence=last.sub_sequence,
            records=len(records),
            millis_behind=millis_behind,
        )
    return results


def shard_record_dead_letter(
    *, lease: HeldLease, worker: str, record: UserRecord, reason: str, millis_behind: int | None
) -> None:
    """Keep a record that could not be stored at all as a dead letter, and checkpoint past it.

    For records that break the insert itself (the envelope was valid, the database refused the
    row), found by splitting a failing batch in halves; the shard goes on.
    """
    with transaction.atomic():
        DeadLetter.objects.create(
            source_kind=SourceKind.KINESIS,
            source_ref=record.reference(stream=lease.stream, shard_id=lease.shard_id)[:500],
            raw=record.data,
            reason=reason[:1000],
        )
        lease_checkpoint(
            lease=lease,
            worker=worker,
            sequence=record.sequence,
            sub_sequence=record.sub_sequence,
            records=1,
            millis_behind=millis_behind,
        )
