"""The shared cache: which one the settings choose, and the Redis backend's safe clear and soft failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from statustracker.cache import RedisCache
from tests.conftest import ROOT

CHOSEN = "from django.conf import settings; import json; print(json.dumps(settings.CACHES['default'], default=str))"


def cache_setting(tmp_path, **env) -> dict:
    """CACHES['default'] as settings make it from this environment (in a fresh interpreter)."""
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "statustracker.settings",
        "SECRET_KEY": "cache-test",
        "STATUSTRACKER_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "filesystem://",
        "CACHE_URL": "",
        **env,
    }
    code = f"import django; django.setup(); {CHOSEN}"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_the_embedded_default_is_a_file_cache_under_the_var_dir(tmp_path):
    cache = cache_setting(tmp_path)

    assert cache["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert cache["LOCATION"] == str(tmp_path / "cache")


def test_a_redis_broker_brings_a_redis_cache_with_its_own_prefix(tmp_path):
    cache = cache_setting(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/3")

    assert cache["BACKEND"] == "statustracker.cache.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/3"
    assert cache["KEY_PREFIX"] == "statustracker-cache"


def test_cache_url_wins(tmp_path):
    cache = cache_setting(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/3", CACHE_URL="dbcache://web_cache")

    assert cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert cache["LOCATION"] == "web_cache"


def test_the_suite_runs_on_a_cache_every_process_shares():
    assert settings.CACHES["default"]["BACKEND"] in (
        "statustracker.cache.RedisCache",
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.db.DatabaseCache",
    )


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_redis_reads_as_empty_and_ignores_writes(caplog):
    # Nothing listens on the port: every command fails to connect.
    cache = RedisCache(f"redis://127.0.0.1:{unused_port()}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})

    assert cache.get("k", "default") == "default"
    assert cache.add("k", 1, 60) is True  # a rate limit counts the request as the window's first
    assert cache.incr("k") == 1
    cache.set("k", 1, 60)
    assert cache.get_many(["k"]) == {}
    assert cache.delete("k") is False


@pytest.fixture
def redis_url():
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("needs Redis (set CELERY_BROKER_URL=redis://...)")
    return url


def test_clearing_the_cache_leaves_the_brokers_keys_alone(redis_url):
    import redis

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    cache = RedisCache(redis_url, {"KEY_PREFIX": prefix})
    broker = redis.Redis.from_url(redis_url)
    queue = f"{prefix}-queue"  # shaped like a Celery queue's key, sharing the prefix's first characters
    broker.rpush(queue, "message")
    try:
        cache.set_many({f"k{i}": i for i in range(2500)}, 60)

        cache.clear()

        assert cache.get("k1") is None
        assert not list(broker.scan_iter(match=f"{prefix}:*"))
        assert broker.lrange(queue, 0, -1) == [b"message"]
    finally:
        broker.delete(queue)
