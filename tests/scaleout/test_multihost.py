"""The pipeline on several hosts (network namespaces), two of which drop off the network mid-run.

bench/multihost.py does the work: PostgreSQL and Redis on a data host, kinesalite on another, two
consumer hosts and two worker hosts; one consumer host and one worker host are cut off while each
has a database transaction open, as when a machine loses power. These tests run short versions of
it and check what it found against an independent replay of the spec.

They need root and iproute2 (namespaces, veth, a bridge), PostgreSQL 15's binaries, redis-server
and kinesalite. They start their own PostgreSQL and Redis, so they run in the PostgreSQL pass of
the suite only (CI runs the suite twice).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from bench import multihost
from bench.hosts import unavailable_reason
from tests.json_lines import json_lines
from tests.tracking.arrival.kinesis.conftest import assert_one_reader_at_a_time
from tracking.arrival.kinesis.emulator import KINESALITE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEASE_SECONDS = 4.0
# Events keep flowing for a few seconds after the cut point, so that there is a moment when the
# consumer is storing a batch and the worker applying a task at once (the harness cuts then).
EVENTS, RATE = 6000, 800.0


def _why_not() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "runs in the suite's PostgreSQL pass only (it starts its own PostgreSQL and Redis on the hosts)"
    missing = [
        what
        for what, present in (
            ("PostgreSQL 15's binaries", (multihost.Options().pg_bin / "initdb").exists()),
            ("redis-server", shutil.which("redis-server")),
            ("node with kinesalite", shutil.which("node") and (KINESALITE / "package.json").exists()),
        )
        if not present
    ]
    if missing:
        return f"needs {', '.join(missing)}"
    return unavailable_reason()


@pytest.fixture
def hosts_available():
    reason = _why_not()
    if reason:
        pytest.skip(reason)


def run(tmp_path: Path, **options) -> tuple[multihost.Figures, multihost.Options]:
    opts = multihost.Options(
        lease_seconds=LEASE_SECONDS,
        visibility_timeout=10,
        sweep_after=15,
        sweep_interval=5,
        timeout=120,
        events=EVENTS,
        rate=RATE,
        quiet=True,
        **options,
    )
    figures = multihost.run(opts, workdir=tmp_path)
    print(figures.report(opts))  # noqa: T201 - the figures, for whoever reads the test's output
    return figures, opts


def consumer_logs(figures: multihost.Figures) -> list[SimpleNamespace]:
    return [SimpleNamespace(log=lambda path=path: json_lines(path)) for path in figures.consumer_logs.values()]


def assert_nothing_lost_or_doubled(figures: multihost.Figures) -> None:
    assert figures.events_stored == figures.events_distinct
    assert figures.events_lost == 0
    assert figures.transitions_applied_twice == 0
    assert figures.duplicates_counted == figures.duplicates_expected > 0
    assert figures.pending_at_end == 0
    assert figures.dead_letters == 0
    assert figures.replay_differences == []
    assert figures.checkpoints_moved_back == []


def test_a_consumer_host_and_a_worker_host_cut_off_mid_run_lose_and_double_nothing(hosts_available, tmp_path):
    # Given two consumer hosts sharing a 4-shard stream and two worker hosts on the data host's Redis
    # When worker-1 and consumer-1 are cut off, each with a transaction open, and come back at the end
    figures, _ = run(tmp_path)

    # Then every event is applied exactly once and the end state equals the replay of the spec
    assert_nothing_lost_or_doubled(figures)
    # consumer-2 took consumer-1's shards through their leases and stored on them
    assert figures.cut_consumer_in_transaction
    assert len(figures.cut_consumer_shards) == 2
    assert figures.shards_taken_by_survivor == figures.cut_consumer_shards
    assert figures.handover_seconds is not None
    assert assert_one_reader_at_a_time(consumer_logs(figures)) >= len(figures.cut_consumer_shards)
    # The database let go of the silent hosts' sessions and locks (TCP keepalives, settings.py)
    assert all(seconds is not None and seconds < 40 for seconds in figures.sessions_dropped_seconds.values())
    # worker-2 ran the tasks worker-1 had received but not acknowledged, after the visibility timeout
    assert figures.cut_worker_in_transaction
    assert figures.cut_worker_tasks
    assert set(figures.tasks_redone) == set(figures.cut_worker_tasks)
    assert figures.tasks_redone_seconds >= 10
    # Back on the network, consumer-1 won shards back by hand-over and read on them; worker-1 works again
    assert figures.rejoined_consumer_shards
    assert figures.rejoined_consumer_records > 0
    assert figures.cut_worker_back_seconds is not None
    # Every host used the Redis broker; none had a filesystem broker
    assert figures.broker_url.startswith("redis://")
    assert figures.broker_messages > 0
    assert figures.filesystem_broker_dirs == []


def test_a_consumer_back_while_its_transaction_is_still_open_stores_nothing_under_the_lease_it_lost(
    hosts_available, tmp_path
):
    # Given consumer-1 cut off while storing a batch, before the batch's checkpoint, and its shards
    # taken by consumer-2 once their leases expired
    # When its link comes back before the database dropped that transaction (after 8 s; the
    # keepalives take about 20 s), so that the transaction goes on where it stopped
    figures, _ = run(tmp_path, consumer_back_after=2 * LEASE_SECONDS)
    assert figures.consumer_transaction_open_when_back
    assert len(figures.cut_consumer_shards) == 2
    assert figures.shards_taken_by_survivor == figures.cut_consumer_shards

    # Then its checkpoint, conditional on the lease it no longer holds, matched nothing: the batch was
    # rolled back and the lease dropped as lost; nothing was stored twice or moved a checkpoint back
    assert any(note.startswith("lease_dropped (lost)") for note in figures.cut_consumer_after_return)
    assert_nothing_lost_or_doubled(figures)
    assert assert_one_reader_at_a_time(consumer_logs(figures)) >= len(figures.cut_consumer_shards)
