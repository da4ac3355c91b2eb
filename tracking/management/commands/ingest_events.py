"""``ingest_events``: a JSON Lines file of events into the inbox, in batches."""

from django.core.management.base import BaseCommand, CommandError

from tracking.arrival.ingest import ACCEPTED, CONFLICT, DUPLICATE, OUTCOMES, REJECTED, RawEvent, events_ingest
from tracking.models import SourceKind


class Command(BaseCommand):
    help = (
        "Feed a file of event envelopes, one JSON object a line (JSON Lines), through the same "
        "ingestion path as the API and the Kinesis consumer. Rejected lines become dead letters with "
        "the reason, and so do lines that reuse a stored event id with another body (conflicts); the rest is "
        "stored and applied by the Celery workers. Each rejected or conflicting line, and each accepted one that "
        "cannot have an effect, is reported on standard error."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.jsonl")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, file, batch_size, **options):
        counts = dict.fromkeys(OUTCOMES, 0)
        try:
            handle = open(file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        with handle:
            batch: list[RawEvent] = []
            for number, line in enumerate(handle, start=1):
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                batch.append(RawEvent(line, f"{file}:{number}"))
                if len(batch) >= batch_size:
                    self._ingest(batch, counts)
                    batch = []
            if batch:
                self._ingest(batch, counts)
        summary = f"{counts[ACCEPTED]} accepted, {counts[DUPLICATE]} duplicate, {counts[REJECTED]} rejected"
        if counts[CONFLICT]:
            summary += f", {counts[CONFLICT]} conflict"
        self.stdout.write(summary)

    def _ingest(self, batch, counts):
        for item, result in zip(batch, events_ingest(items=batch, source_kind=SourceKind.FILE), strict=True):
            counts[result.status] += 1
            if result.status == REJECTED:
                field = f" ({result.field})" if result.field else ""
                more = "".join(f"; {f}: {r}" if f else f"; {r}" for f, r in result.errors[1:])
                self.stderr.write(f"{item.source_ref}: rejected{field}: {result.reason}{more}")
            elif result.status == CONFLICT:
                self.stderr.write(f"{item.source_ref}: conflict: {result.reason}")
            elif result.warning:
                self.stderr.write(f"{item.source_ref}: accepted, {result.warning}")
