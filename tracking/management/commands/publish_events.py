"""``publish_events``: put a JSON Lines file of events on a Kinesis stream."""

from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracking.arrival.kinesis.client import make_client
from tracking.arrival.kinesis.producer import records_publish


class Command(BaseCommand):
    help = (
        "Put a file of event envelopes (JSON Lines) on a Kinesis stream with PutRecords: up to 500 "
        "records a request, the transaction id as partition key (one transaction's events stay in "
        "order on one shard), failed records retried with backoff. Lines that are not an envelope "
        "with a transaction id are reported and skipped, unless --raw puts them on the stream as "
        "they are (to see the consumer dead-letter them)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE.jsonl")
        parser.add_argument("--stream", default=settings.KINESIS_STREAM_NAME, required=not settings.KINESIS_STREAM_NAME)
        parser.add_argument("--region", default=settings.AWS_DEFAULT_REGION)
        parser.add_argument("--endpoint-url", default=settings.KINESIS_ENDPOINT_URL)
        parser.add_argument("--raw", action="store_true", help="Publish every line, even invalid ones.")

    def handle(self, *args, file, stream, region, endpoint_url, raw, **options):
        path = Path(file)
        try:
            total = sum(1 for line in path.open("rb") if line.strip())
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        client = make_client(region=region, endpoint_url=endpoint_url)
        with path.open("rb") as handle, tqdm(total=total, unit="event", disable=None) as bar:
            lines = ((number, line.rstrip(b"\r\n")) for number, line in enumerate(handle, start=1))
            try:
                report = records_publish(client=client, stream=stream, lines=lines, raw=raw, on_progress=bar.update)
            except (ClientError, BotoCoreError) as exc:
                raise CommandError(f"publishing to {stream} failed: {exc}") from exc
        for number, reason in report.skipped:
            self.stderr.write(f"{file}:{number}: skipped: {reason}")
        self.stdout.write(
            f"{report.published} published in {report.requests} requests, "
            f"{report.retried_records} records retried, {len(report.skipped)} skipped"
        )
