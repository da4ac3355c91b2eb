"""``/metrics`` and the lease admin show each shard's lag, rate, last checkpoint and owner."""

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tracking.models import ShardLease

pytestmark = pytest.mark.django_db

CHECKPOINT_AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def leases():
    ShardLease.objects.create(
        stream="orders",
        shard_id="shardId-000000000000",
        owner="host-a:41",
        millis_behind_latest=1500,
        records_per_second=812.5,
        last_checkpoint_at=CHECKPOINT_AT,
        records_processed=12345,
    )
    ShardLease.objects.create(stream="orders", shard_id="shardId-000000000001", finished=True)


def _samples(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_report_each_shard_from_the_lease_table(client, settings, leases):
    settings.METRICS_TOKEN = "s3cret"

    response = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})

    assert response.status_code == 200
    samples = _samples(response.content.decode())
    labels = (("owner", "host-a:41"), ("shard", "shardId-000000000000"), ("stream", "orders"))
    assert samples[("statustracker_kinesis_shard_millis_behind_latest", labels)] == 1500
    assert samples[("statustracker_kinesis_shard_records_per_second", labels)] == 812.5
    assert (
        samples[("statustracker_kinesis_shard_last_checkpoint_timestamp_seconds", labels)] == CHECKPOINT_AT.timestamp()
    )
    shard0 = (("shard", "shardId-000000000000"), ("stream", "orders"))
    shard1 = (("shard", "shardId-000000000001"), ("stream", "orders"))
    assert samples[("statustracker_kinesis_shard_records_processed_total", shard0)] == 12345
    assert samples[("statustracker_kinesis_shard_finished", shard1)] == 1
    assert samples[("statustracker_inbox_open_events", (("status", "pending"),))] == 0


def test_metrics_token_is_required_when_set(client, settings, leases):
    settings.METRICS_TOKEN = "s3cret"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_lease_admin_lists_lag_rate_checkpoint_and_owner(admin_client, leases):
    response = admin_client.get("/admin/tracking/shardlease/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "host-a:41" in page
    assert "1.5 s" in page
    assert "812.5" in page
    lease = ShardLease.objects.get(shard_id="shardId-000000000000")
    # The records processed are on the lease's own page (the list keeps to what fits 1280 px)
    assert "12345" in admin_client.get(f"/admin/tracking/shardlease/{lease.pk}/change/").content.decode()
    assert admin_client.post(f"/admin/tracking/shardlease/{lease.pk}/delete/").status_code == 403
