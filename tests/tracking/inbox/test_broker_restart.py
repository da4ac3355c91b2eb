"""A broker that restarts or is away: workers keep running, stored events are answered as accepted,
and every stored event is applied soon after the broker is back.

Each test runs real worker processes on a private redis-server (tests/broker.py) that keeps
nothing on disk, so a restart loses every queued task, as it does in the service. The workers sweep
by age only after an hour: whatever is applied here was recovered by the sweep a worker asks for
when it connects (tracking/inbox/reconnect.py).
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from django.db import transaction

from tests.broker import RedisServer, celery_broker, free_port
from tests.conftest import load_example_model, wait_for
from tests.service_state import nothing_pending
from tracking.apply.tasks import apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# How long a worker may take to apply what waited: generous; the recovery time is printed.
GENEROUS_WAIT = 90


def worker_env(server: RedisServer) -> dict[str, str]:
    return {"CELERY_BROKER_URL": server.url, "STATUSTRACKER_SWEEP_AFTER_SECONDS": "3600"}


def order_event(event_id: str, transaction_id: str, event_type: str) -> dict:
    return {
        "event_id": event_id,
        "model_id": "order-fulfilment",
        "transaction_id": transaction_id,
        "event_type": event_type,
        "occurred_at": "2026-11-26T10:00:00Z",
    }


def ingest(envelopes: list[dict]) -> None:
    results = events_ingest(items=[RawEvent(json.dumps(e).encode()) for e in envelopes], source_kind="file")
    assert {result.status for result in results} == {"accepted"}


def orders(prefix: str, count: int) -> list[dict]:
    """``count`` orders, each placed and paid: two events, one instance."""
    return [
        order_event(f"{prefix}-{n}-{step}", f"{prefix}-{n}", event_type)
        for n in range(count)
        for step, event_type in enumerate(("order.placed", "payment.captured"))
    ]


def applied_or_exited(worker) -> bool:
    return nothing_pending() or worker.process.poll() is not None


def test_a_worker_holding_a_countdown_task_survives_a_broker_restart(redis_server, start_worker):
    # Given a worker on its own broker, which has connected and is consuming
    load_example_model()
    with celery_broker(redis_server.url):
        worker = start_worker(concurrency=1, extra_env=worker_env(redis_server))
        ingest(orders("ready", 1))
        wait_for(nothing_pending, timeout=GENEROUS_WAIT, message="the worker to apply a first order")

        # And stored events whose apply task the worker holds unacknowledged, waiting for its
        # countdown (as a retry with back-off waits)
        with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
            ingest(orders("held", 3))  # stored; their own tasks could not be sent
        held = list(ProcessInstance.objects.filter(transaction_id__startswith="held").values_list("pk", flat=True))
        apply_pending.apply_async(args=[held], countdown=600)
        wait_for(lambda: redis_server.client().hlen("unacked") == 1, message="the worker to hold the task")

        # When the broker restarts, losing everything it held
        redis_server.stop()
        redis_server.start()

        # Then the worker is still running, and the work of the task it held is done (Celery drops
        # a task waiting for its countdown when the connection breaks, for the broker to deliver it
        # again; this one kept nothing, so the sweep on reconnection sends the work again)
        wait_for(lambda: applied_or_exited(worker), timeout=GENEROUS_WAIT, message="the held events to be applied")
        assert worker.process.poll() is None, f"the worker exited with {worker.process.returncode}"
        assert nothing_pending()
        states = dict(ProcessInstance.objects.values_list("transaction_id", "state"))
        assert states == {"ready-0": "paid", "held-0": "paid", "held-1": "paid", "held-2": "paid"}


def test_events_whose_tasks_a_broker_restart_lost_are_applied_soon_after_it_returns(redis_server, start_worker, capsys):
    # Given a worker that is behind: paused (SIGSTOP), so that the tasks of new events wait in the
    # broker
    load_example_model()
    with celery_broker(redis_server.url):
        worker = start_worker(concurrency=2, extra_env=worker_env(redis_server))
        ingest(orders("first", 1))
        wait_for(nothing_pending, timeout=GENEROUS_WAIT, message="the worker to apply a first order")
        # Paused outside any write of its own: on SQLite (BEGIN IMMEDIATE) this transaction waits
        # until the worker holds no write lock, which a paused worker would keep for ever.
        with transaction.atomic():
            os.killpg(worker.process.pid, signal.SIGSTOP)
        queued = orders("queued", 200)
        for start in range(0, len(queued), 20):
            ingest(queued[start : start + 20])
        assert redis_server.client().llen("statustracker") > 0

        # When the broker restarts and stays away for 4.5 seconds, losing the queued tasks, while
        # the worker goes on and events arrive (stored; their tasks cannot be sent)
        redis_server.stop()
        down_at = time.monotonic()
        os.killpg(worker.process.pid, signal.SIGCONT)
        during = orders("during", 25)
        for start in range(0, len(during), 10):
            ingest(during[start : start + 10])
        waiting = InboxEvent.objects.filter(status=EventStatus.PENDING).count()
        time.sleep(max(0.0, down_at + 4.5 - time.monotonic()))
        redis_server.start()
        back_at = time.monotonic()

        # Then every stored event is applied soon after the broker is back
        wait_for(lambda: applied_or_exited(worker), timeout=GENEROUS_WAIT, message="every stored event to be applied")
        recovered_in = time.monotonic() - back_at
        assert worker.process.poll() is None, f"the worker exited with {worker.process.returncode}"
        assert set(ProcessInstance.objects.values_list("state", flat=True)) == {"paid"}
        assert ProcessInstance.objects.count() == 1 + 200 + 25
        with capsys.disabled():  # the figure, shown in every run
            print(f"\n{waiting} pending events applied {recovered_in:.1f} s after the broker's return")  # noqa: T201


def test_the_api_accepts_events_while_the_broker_is_down_and_they_are_applied_when_it_returns(
    redis_server, start_worker, api_client, caplog
):
    # Given a broker that is down
    load_example_model()
    client = api_client(produce=True)
    redis_server.stop()
    with celery_broker(redis_server.url):
        # When a producer posts events
        events = [
            order_event("api-1", "API-1", "order.placed"),
            order_event("api-2", "API-1", "payment.captured"),
            order_event("api-3", "API-2", "order.placed"),
        ]
        response = client.post("/api/v1/events", {"events": events}, format="json")

        # Then they are stored and answered as accepted; that their tasks could not be sent is logged
        assert response.status_code == 202, response.content
        answer = response.json()
        assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (3, 0, 0)
        assert [result["status"] for result in answer["results"]] == ["accepted"] * 3
        assert InboxEvent.objects.filter(status=EventStatus.PENDING).count() == 3
        assert "could not send apply tasks for 2 instances" in caplog.text

        # And once the broker is back, a worker that connects applies them
        redis_server.start()
        start_worker(extra_env=worker_env(redis_server))
        wait_for(nothing_pending, timeout=GENEROUS_WAIT, message="the stored events to be applied")
        assert dict(ProcessInstance.objects.values_list("transaction_id", "state")) == {
            "API-1": "paid",
            "API-2": "received",
        }
