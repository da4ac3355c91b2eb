"""What `make run` prints stays readable: no line per Celery task, and Ctrl-C ends the traffic
simulator with one line, not a traceback. Real processes, started as bin/run starts them."""

import os
import signal
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT, _database_url, load_example_model, wait_for
from tests.events import ingest, order_event
from tracking.models import InboxEvent, ProcessInstance

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_at_info_level_logs_no_line_per_task(tmp_path):
    from statustracker.celery import app

    app.control.purge()
    load_example_model()
    # Given stored events waiting for a worker
    ingest(*[order_event(f"e{i}", f"ORD-{i}", "order.placed") for i in range(5)])
    log = tmp_path / "worker.log"

    # When a worker started as bin/run starts it (-l info) applies them
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "statustracker", "worker", "-l", "info", "-c", "1",
             "-n", f"log-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": _database_url()}, stdout=output, stderr=output,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(
                lambda: not ProcessInstance.objects.filter(state="").exists(), message="the worker to apply the events"
            )
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    # Then its output has its start, but no line for each task it ran
    text = log.read_text()
    assert " ready." in text
    assert "] received" not in text
    assert " succeeded in " not in text


def test_ctrl_c_ends_the_traffic_simulator_with_one_line():
    load_example_model()
    simulator = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_traffic", "--rate", "20"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": _database_url()},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: InboxEvent.objects.exists() or simulator.poll() is not None, message="simulated events")

        simulator.send_signal(signal.SIGINT)
        stdout, stderr = simulator.communicate(timeout=15)
    finally:
        if simulator.poll() is None:
            simulator.kill()

    assert simulator.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "simulate_traffic: stopped after" in stdout
