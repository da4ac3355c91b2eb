"""Fixtures for the inbox's tests: a private Redis broker that a test may restart."""

from collections.abc import Iterator

import pytest

from tests.broker import RedisServer


@pytest.fixture
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """A private redis-server, running; stopped at the end of the test."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
