"""``simulate_traffic``: simulated orders for the example model, for demos."""

import json
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.arrival.simulation import order_traffic
from tracking.models import SourceKind


class Command(BaseCommand):
    help = (
        "Send simulated order traffic for the example model (order-fulfilment), for demos and local runs: "
        "to a Kinesis stream with --stream, otherwise straight into the inbox. Stops after --events, or on "
        "Ctrl-C / SIGTERM (after the event in hand, exit status 0)."
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
        # Ctrl-C in `make run` reaches every process: stop after the event in hand, with one line
        # rather than a traceback from wherever the interrupt fell (often deep in botocore).
        stopping = []

        def request_stop(signum, frame):
            stopping.append(signum)
            # A second signal stops at once, without waiting for the event in hand.
            signal.signal(signum, signal.SIG_DFL)

        previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopping and (not events or sent < events):
                send(next(traffic))
                sent += 1
                if sent % 100 == 0:
                    self.stdout.write(f"simulate_traffic: {sent} events sent")
                next_at += interval
                while not stopping and time.monotonic() < next_at:
                    time.sleep(min(0.2, next_at - time.monotonic()))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if stopping:
            self.stdout.write(f"simulate_traffic: stopped after {sent} events")

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
