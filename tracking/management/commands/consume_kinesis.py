"""``consume_kinesis``: the long-running Kinesis consumer process."""

import os
import signal
import socket
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from tracking.arrival.kinesis import logs
from tracking.arrival.kinesis.client import make_client
from tracking.arrival.kinesis.consumer import INITIAL_POSITIONS, ConsumerSettings, KinesisConsumer


class Command(BaseCommand):
    help = (
        "Read a Kinesis data stream into the event inbox; Celery workers then apply the events. "
        "Shard leases and checkpoints live in the database, so any number of these processes, on one "
        "machine or many, share a stream: each takes its fair share of the shards, a stopped or killed "
        "process's shards move to the others (at once after SIGTERM, after one lease period after a "
        "crash), and each resumes from the last checkpoint. Run it under a supervisor (systemd, "
        "Kubernetes, supervisord) that restarts it; scale with one process per core or machine. More "
        "processes than shards is allowed and harmless: the extra ones wait as standbys. SIGTERM or "
        "SIGINT finishes the batch in hand, checkpoints, releases the leases and exits 0. Every option "
        "can also be set in the environment (shown in brackets); see docs/kinesis.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--stream", default=settings.KINESIS_STREAM_NAME, help="Stream name [KINESIS_STREAM_NAME].")
        parser.add_argument("--region", default=settings.AWS_DEFAULT_REGION, help="AWS region [AWS_DEFAULT_REGION].")
        parser.add_argument(
            "--endpoint-url",
            default=settings.KINESIS_ENDPOINT_URL,
            help="Kinesis endpoint, for a local server such as kinesalite [KINESIS_ENDPOINT_URL].",
        )
        parser.add_argument(
            "--initial-position",
            choices=INITIAL_POSITIONS,
            default=settings.KINESIS_INITIAL_POSITION,
            help="Where to start shards that have no checkpoint yet [KINESIS_INITIAL_POSITION].",
        )
        parser.add_argument(
            "--start-timestamp",
            default=settings.KINESIS_START_TIMESTAMP,
            help="With AT_TIMESTAMP: an ISO 8601 time with offset [KINESIS_START_TIMESTAMP].",
        )
        parser.add_argument(
            "--worker-id",
            default=settings.KINESIS_WORKER_ID,
            help="Unique name of this process in the lease table; default host:pid [KINESIS_WORKER_ID].",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.KINESIS_BATCH_SIZE,
            help="Records per GetRecords call and per inbox transaction [KINESIS_BATCH_SIZE].",
        )
        parser.add_argument(
            "--lease-duration",
            type=float,
            default=settings.KINESIS_LEASE_DURATION,
            help="Seconds a lease lasts without renewal; also how long a crashed process's shards "
            "wait before others take them [KINESIS_LEASE_DURATION].",
        )
        parser.add_argument(
            "--shard-sync-interval",
            type=float,
            default=settings.KINESIS_SHARD_SYNC_INTERVAL,
            help="Seconds between looks for new shards after a reshard [KINESIS_SHARD_SYNC_INTERVAL].",
        )
        parser.add_argument(
            "--idle-poll-interval",
            type=float,
            default=settings.KINESIS_IDLE_POLL_INTERVAL,
            help="Longest wait between polls of an idle shard, in seconds [KINESIS_IDLE_POLL_INTERVAL].",
        )
        parser.add_argument(
            "--progress-interval",
            type=float,
            default=settings.KINESIS_PROGRESS_INTERVAL,
            help="Seconds between progress lines in the log [KINESIS_PROGRESS_INTERVAL].",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.KINESIS_METRICS_PORT,
            help="Serve this process's Prometheus counters on this port; 0: off [KINESIS_METRICS_PORT].",
        )
        parser.add_argument(
            "--metrics-addr",
            default=settings.KINESIS_METRICS_ADDR,
            help="Address for --metrics-port [KINESIS_METRICS_ADDR].",
        )
        parser.add_argument(
            "--log-format",
            choices=("json", "plain"),
            default=settings.KINESIS_LOG_FORMAT,
            help="json: one object a line for log collectors [KINESIS_LOG_FORMAT].",
        )
        parser.add_argument(
            "--log-level", default=settings.KINESIS_LOG_LEVEL, help="Level of the consumer's logs [KINESIS_LOG_LEVEL]."
        )

    def handle(self, *args, **options):
        if not options["stream"]:
            raise CommandError("no stream: pass --stream or set KINESIS_STREAM_NAME")
        start_timestamp = None
        if options["start_timestamp"]:
            start_timestamp = parse_datetime(options["start_timestamp"])
            if start_timestamp is None or start_timestamp.tzinfo is None:
                raise CommandError("--start-timestamp must be an ISO 8601 time with a UTC offset")
        try:
            consumer_settings = ConsumerSettings(
                stream=options["stream"],
                worker_id=options["worker_id"] or f"{socket.gethostname()}:{os.getpid()}",
                batch_size=options["batch_size"],
                lease_duration=timedelta(seconds=options["lease_duration"]),
                initial_position=options["initial_position"],
                start_timestamp=start_timestamp,
                shard_sync_interval=options["shard_sync_interval"],
                idle_poll_interval=options["idle_poll_interval"],
                progress_interval=options["progress_interval"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        logs.configure(fmt=options["log_format"], level=options["log_level"])
        client = make_client(region=options["region"], endpoint_url=options["endpoint_url"])
        try:
            client.describe_stream_summary(StreamName=consumer_settings.stream)
        except ClientError as exc:
            raise CommandError(
                f"cannot read stream {consumer_settings.stream}: {exc} "
                "(create it with `manage.py kinesis_stream create NAME --shards N`)"
            ) from exc
        except BotoCoreError as exc:
            raise CommandError(f"cannot reach Kinesis: {exc}") from exc
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            start_http_server(options["metrics_port"], addr=options["metrics_addr"])

        consumer = KinesisConsumer(settings=consumer_settings, client=client)

        def request_stop(signum, frame):
            consumer.stop()
            # A second signal stops at once, without waiting for the batch in hand.
            signal.signal(signum, signal.SIG_DFL)

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        consumer.start()
