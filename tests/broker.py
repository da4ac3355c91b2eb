"""A private Redis broker that a test may stop and start again, and this process's Celery app on it.

Tests that restart the broker never touch the shared one: each starts its own ``redis-server`` on a
free port, keeping nothing on disk (``--save "" --appendonly no``), as the service's Redis is run,
so a restart loses every queued message. They run on both test databases.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """``redis-server`` on 127.0.0.1 and a port of its own, which stays the same across restarts."""

    def __init__(self, directory: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("needs the redis-server binary")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout=15, message=f"redis-server on port {self.port} to answer")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; with nothing to save, it is gone at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Send this process's tasks (the ingestion's apply tasks, purges) to ``url`` for a while.

    Celery publishes through ``broker_write_url`` (``broker_url`` follows CELERY_BROKER_URL from
    the environment, which the suite may set). The app's producer pool is bound to the broker it
    was made for, so it is dropped on the way in and out, as Celery's own after-fork reset does.
    """
    from statustracker.celery import app

    saved = app.conf.get("broker_write_url"), app.conf.broker_transport_options

    def reset_pool() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_write_url = url
    app.conf.broker_transport_options = {"visibility_timeout": 3600, "socket_connect_timeout": 1.0}
    reset_pool()
    try:
        yield
    finally:
        app.conf.broker_write_url, app.conf.broker_transport_options = saved
        reset_pool()
