"""The Redis cache backend of the shared cache (rate limits, admin login lockouts, estimates).

Django's own ``RedisCache`` with two differences:

- ``clear()`` deletes only this cache's keys (those under its ``KEY_PREFIX``) instead of flushing
  the whole Redis database, so the cache can live in the broker's database without ever emptying
  the Celery queues;
- when Redis cannot be reached, reads answer as for a missing key and writes do nothing, after a
  logged warning: the cache only holds counters and an estimate that can be recomputed, and a
  broker restart must not turn every API request and customer page into a 500. Limits are lifted
  while Redis is away; they count again as soon as it is back.
"""

from __future__ import annotations

import logging
import time
from functools import wraps

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


def _warn(exc: Exception) -> None:
    # One line a minute is enough to see an outage in the logs; one per request would drown them.
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning("cache unreachable, rate limits lifted until it answers: %s", exc)


def _fail_soft(answer):
    """On an unreachable Redis, log and return ``answer(*args)`` instead of raising."""

    def decorator(method):
        @wraps(method)
        def wrapped(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as exc:
                _warn(exc)
                return answer(*args, **kwargs)

        return wrapped

    return decorator


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, *, key_prefix: str, **options):
        super().__init__(servers, **options)
        self._key_prefix = key_prefix

    add = _fail_soft(lambda key, value, timeout: True)(RedisCacheClient.add)
    get = _fail_soft(lambda key, default: default)(RedisCacheClient.get)
    set = _fail_soft(lambda key, value, timeout: None)(RedisCacheClient.set)
    touch = _fail_soft(lambda key, timeout: False)(RedisCacheClient.touch)
    delete = _fail_soft(lambda key: False)(RedisCacheClient.delete)
    get_many = _fail_soft(lambda keys: {})(RedisCacheClient.get_many)
    has_key = _fail_soft(lambda key: False)(RedisCacheClient.has_key)
    incr = _fail_soft(lambda key, delta: delta)(RedisCacheClient.incr)
    set_many = _fail_soft(lambda data, timeout: None)(RedisCacheClient.set_many)
    delete_many = _fail_soft(lambda keys: None)(RedisCacheClient.delete_many)

    def clear(self) -> bool:
        client = self.get_client(None, write=True)
        # Keys are "<prefix>:<version>:<key>"; escape the prefix's glob characters.
        prefix = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self._key_prefix)
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        return True


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, clearing only its own keys and failing soft (see the module docstring)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        if not self.key_prefix:
            # Without a prefix, clear() would match every key of the database, the broker's too.
            self.key_prefix = "statustracker-cache"
        self._class = SharedRedisCacheClient
        self._options = {"key_prefix": self.key_prefix, **self._options}
