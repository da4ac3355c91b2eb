"""``/metrics`` for the web process: the pipeline's figures, read from the database when scraped.

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
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tracking.arrival.kinesis.selectors import shard_leases
from tracking.inbox.selectors import dead_letter_count, inbox_backlog


class DatabaseCollector:
    """Collects, when scraped, the per-shard figures that the consumers store with their leases."""

    def collect(self):
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
        dead = GaugeMetricFamily(
            "statustracker_dead_letters", "Rejected input kept as dead letters, not yet replayed or discarded."
        )
        try:
            for lease in shard_leases():
                labels = [lease.stream, lease.shard_id, lease.owner]
                if lease.millis_behind_latest is not None:
                    lag.add_metric(labels, lease.millis_behind_latest)
                rate.add_metric(labels, lease.records_per_second)
                if lease.last_checkpoint_at is not None:
                    checkpoint.add_metric(labels, lease.last_checkpoint_at.timestamp())
                processed.add_metric([lease.stream, lease.shard_id], lease.records_processed)
                finished.add_metric([lease.stream, lease.shard_id], 1 if lease.finished else 0)
            for status, count in inbox_backlog().items():
                backlog.add_metric([status], count)
            dead.add_metric([], dead_letter_count())
        except DatabaseError:
            # A scrape during a database outage reports no figures rather than failing.
            return
        yield from (lag, rate, checkpoint, processed, finished, backlog, dead)


WEB_REGISTRY = CollectorRegistry(auto_describe=False)
WEB_REGISTRY.register(DatabaseCollector())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for scrapers that send ``Authorization: Bearer <METRICS_TOKEN>``.

    With no token configured, the figures are open only while DEBUG is on (a developer's machine);
    otherwise the endpoint refuses everyone with 403 until a token is set, so that a production
    deployment never publishes its backlog and shard owners by omission (docs/production.md).
    """
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.DEBUG:
        return HttpResponse("metrics are off: set METRICS_TOKEN to serve them\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(WEB_REGISTRY), content_type=CONTENT_TYPE_LATEST)
