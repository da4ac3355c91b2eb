"""``simulate_traffic``: simulated orders for the example model, for demos."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.arrival.simulation import order_traffic
from tracking.models import SourceKind


class Command(BaseCommand):
    help = (
        "Send simulated order traffic for the example model (order-fulfilment), for demos and local runs: "
        "to a Kinesis stream with --stream, otherwise straight into the inbox. Stops after --events, or never."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=5.0, help="events per second")
        parser.add_argument("--events", type=int, default=0, help="stop after this many (0: run until stopped)")
        parser.add_argument("--orders", type=int, default=20, help="orders in flight at once")
        parser.add_argument("--stream", default="", help="Kinesis stream to put the events on")
        parser.add_argument("--endpoint-url", default=settings.KINESIS_ENDPOINT_URL)
        parser.add_argument("--region", default=settings.AWS_DEFAULT_REGION)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, rate, events, orders, stream, endpoint_url, region, seed, **options):
        send = self._kinesis_sender(stream, endpoint_url, region) if stream else self._inbox_sender
        traffic = order_traffic(seed=seed, concurrent_orders=orders)
        sent = 0
        interval = 1.0 / rate if rate > 0 else 0
        next_at = time.monotonic()
        while not events or sent < events:
            send(next(traffic))
            sent += 1
            if sent % 100 == 0:
                self.stdout.write(f"simulate_traffic: {sent} events sent")
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _inbox_sender(envelope: dict) -> None:
        events_ingest(items=[RawEvent(envelope, source_ref="simulator")], source_kind=SourceKind.API)

    @staticmethod
    def _kinesis_sender(stream, endpoint_url, region):
        from tracking.arrival.kinesis.client import make_client

        client = make_client(region=region, endpoint_url=endpoint_url)

        def send(envelope: dict) -> None:
            client.put_record(
                StreamName=stream, Data=json.dumps(envelope).encode(), PartitionKey=envelope["transaction_id"]
            )

        return send
