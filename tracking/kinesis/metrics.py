"""Prometheus metrics: the consumer's own counters, and ``/metrics`` for the web process.

The consumer runs as separate processes, possibly on other machines, so ``/metrics`` does not see
their memory: it reports what they write to the database (each shard's lag, rate, last checkpoint
and owner) at scrape time. A consumer can also serve its own counters (records, retries, lease
changes) with ``consume_kinesis --metrics-port``.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# --- counters kept by a consumer process --------------------------------------------------------
RECORDS = Counter(
    "statustracker_kinesis_records", "User records stored in the inbox or dead-lettered.", ["stream", "shard"]
)
REJECTED = Counter("statustracker_kinesis_rejected_records", "User records kept as dead letters.", ["stream", "shard"])
RETRIES = Counter(
    "statustracker_kinesis_retries",
    "Kinesis calls retried, by cause (throttled, server_error, connection, expired_iterator).",
    ["stream", "cause"],
)
LEASE_CHANGES = Counter(
    "statustracker_kinesis_lease_changes",
    "Leases taken, adopted, lost, handed over, released and finished by this worker.",
    ["stream", "change"],
)
LEASES_HELD = Gauge("statustracker_kinesis_leases_held", "Leases this worker holds.", ["stream"])
MILLIS_BEHIND = Gauge(
    "statustracker_kinesis_millis_behind_latest", "MillisBehindLatest of the last read.", ["stream", "shard"]
)
BATCH_SECONDS = Histogram(
    "statustracker_kinesis_batch_store_seconds",
    "Time to store one batch and its checkpoint.",
    ["stream"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class DatabaseCollector:
    """Collects, when scraped, the per-shard figures that the consumers store with their leases."""

    def collect(self):
        from tracking.kinesis import selectors

        lag = GaugeMetricFamily(
            "statustracker_kinesis_shard_millis_behind_latest",
            "How far the shard's reader is behind the stream's tip (MillisBehindLatest).",
            labels=["stream", "shard", "owner"],
        )
        rate = GaugeMetricFamily(
            "statustracker_kinesis_shard_records_per_second",
            "Records per second stored from the shard, as its reader last measured.",
            labels=["stream", "shard", "owner"],
        )
        checkpoint = GaugeMetricFamily(
            "statustracker_kinesis_shard_last_checkpoint_timestamp_seconds",
            "Unix time of the shard's last checkpoint.",
            labels=["stream", "shard", "owner"],
        )
        processed = CounterMetricFamily(
            "statustracker_kinesis_shard_records_processed",
            "Records stored from the shard since its lease was created.",
            labels=["stream", "shard"],
        )
        finished = GaugeMetricFamily(
            "statustracker_kinesis_shard_finished",
            "1 when the shard is closed and read to its end.",
            labels=["stream", "shard"],
        )
        backlog = GaugeMetricFamily(
            "statustracker_inbox_open_events", "Inbox events not decided yet, by status.", labels=["status"]
        )
        dead = GaugeMetricFamily("statustracker_dead_letters", "Rejected input kept as dead letters.")
        try:
            for lease in selectors.shard_leases():
                labels = [lease.stream, lease.shard_id, lease.owner]
                if lease.millis_behind_latest is not None:
                    lag.add_metric(labels, lease.millis_behind_latest)
                rate.add_metric(labels, lease.records_per_second)
                if lease.last_checkpoint_at is not None:
                    checkpoint.add_metric(labels, lease.last_checkpoint_at.timestamp())
                processed.add_metric([lease.stream, lease.shard_id], lease.records_processed)
                finished.add_metric([lease.stream, lease.shard_id], 1 if lease.finished else 0)
            for status, count in selectors.inbox_backlog().items():
                backlog.add_metric([status], count)
            dead.add_metric([], selectors.dead_letter_count())
        except DatabaseError:
            # A scrape during a database outage reports no figures rather than failing.
            return
        yield from (lag, rate, checkpoint, processed, finished, backlog, dead)


WEB_REGISTRY = CollectorRegistry(auto_describe=False)
WEB_REGISTRY.register(DatabaseCollector())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With METRICS_TOKEN set, scrapers must send it as a bearer token."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(WEB_REGISTRY), content_type=CONTENT_TYPE_LATEST)
