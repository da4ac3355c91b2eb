"""The shard leases' page shows the pipeline's figures beside the shards: the numbers /metrics serves."""

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.events import ingest, order_event
from tracking.models import DeadLetter, ShardLease

pytestmark = pytest.mark.django_db


def test_the_lease_page_shows_what_metrics_serves(example_model, admin_client, settings):
    settings.DEBUG = True  # /metrics is open without a token only while DEBUG is on
    ShardLease.objects.create(stream="s", shard_id="a", owner="c1", records_per_second=120.5, millis_behind_latest=2500)
    ShardLease.objects.create(stream="s", shard_id="b", owner="c2", records_per_second=79.5, millis_behind_latest=900)
    ShardLease.objects.create(stream="s", shard_id="old", owner="", finished=True, records_per_second=999)
    ingest(order_event("p1", "P", "order.placed"), order_event("p2", "Q", "order.placed"))
    DeadLetter.objects.create(source_kind="api", raw=b"{", reason="not JSON")
    DeadLetter.objects.create(  # dealt with: not counted
        source_kind="api", raw=b"{", reason="not JSON", discarded_at=timezone.now(), discard_reason="test input"
    )

    figures = admin_client.get(reverse("admin:tracking_shardlease_changelist")).context["pipeline"]
    metrics = admin_client.get("/metrics").content.decode()

    assert figures == {
        "backlog": {"pending": 2, "parked": 0, "failed": 0},
        "dead_letters": 1,
        "records_per_second": 200.0,
        "max_lag_seconds": 2.5,
        "owners": 2,
    }
    assert 'statustracker_inbox_open_events{status="pending"} 2.0' in metrics
    assert "statustracker_dead_letters 1.0" in metrics
