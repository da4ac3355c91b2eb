"""The boto3 Kinesis client, and how its failures are retried.

botocore's own retries are switched off: the consumer reads several shards in one loop, so a
throttled shard must back off on its own schedule without holding up the others. ``Backoff`` is
exponential with full jitter (the AWS Architecture Blog's recommendation), so that many workers
throttled at once do not retry in step.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.utils import parse_timestamp

T = TypeVar("T")

# Errors that go away by waiting: the stream's or the account's throughput limits, and the
# service's own failures.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
    }
)
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
    }
)


def make_client(
    *, region: str | None = None, endpoint_url: str | None = None, read_timeout: float = 10.0, max_pool: int = 10
):
    """A Kinesis client; credentials come from boto3's usual chain (environment, profile, role)."""
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=max_pool,
        user_agent_extra="statustracker",
    )
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_parse_timestamp)
    return boto3.session.Session(botocore_session=session).client(
        "kinesis", region_name=region or None, endpoint_url=endpoint_url or None, config=config
    )


def _parse_timestamp(value):
    """Kinesis sends times as epoch seconds; read them without dateutil.

    botocore's default parser converts each through dateutil's local time zone, and GetRecords
    has a timestamp per record: that was about 7 % of the consumer's CPU time.
    """
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return parse_timestamp(value)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def is_retryable(exc: BaseException) -> bool:
    """True for throttling, 5xx answers and broken connections: wait and try again."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in RETRYABLE_CODES or status >= 500
    return isinstance(exc, ConnectionError | HTTPClientError)


def failure_kind(exc: BaseException) -> str:
    """A short label for logs and metrics: throttled, server_error or connection."""
    if isinstance(exc, ClientError):
        return "throttled" if error_code(exc) in THROTTLING_CODES else "server_error"
    return "connection"


class Backoff:
    """Exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, base * 2**n)]."""

    def __init__(self, *, base: float = 0.2, cap: float = 10.0):
        self.base = base
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempts))
        self.attempts = min(self.attempts + 1, 32)
        # Never zero: a retry in the same instant would meet the same throttle.
        return max(self.base / 4, random.uniform(0, ceiling))  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.attempts = 0


def call_with_retries(
    call: Callable[[], T],
    *,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    max_attempts: int | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, backing off on retryable errors; others are raised at once.

    A stop request ends the waiting: the last error is raised so that the caller can shut down.
    """
    backoff = backoff or Backoff()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            if not is_retryable(exc) or (max_attempts is not None and attempt >= max_attempts):
                raise
            delay = backoff.next_delay()
            if on_retry:
                on_retry(exc, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)
