"""Create, describe and delete a data stream: the set-up step for development, demos and tests."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from tracking.arrival.kinesis.client import call_with_retries, error_code


class StreamError(Exception):
    pass


def _status(client, name: str) -> str | None:
    try:
        return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def stream_wait(client, name: str, *, until: str | None, timeout: float = 300.0) -> None:
    """Wait until the stream's status is ``until`` (``None``: until it no longer exists)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        status = call_with_retries(lambda: _status(client, name), max_attempts=5)
        if status == until:
            return
        if time.monotonic() > deadline:
            raise StreamError(f"stream {name} is {status or 'gone'}, still not {until or 'gone'} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def stream_create(client, *, name: str, shards: int, wait: bool = True) -> None:
    if shards < 1:
        raise StreamError("a stream needs at least one shard")
    try:
        call_with_retries(lambda: client.create_stream(StreamName=name, ShardCount=shards), max_attempts=5)
    except ClientError as exc:
        if error_code(exc) == "ResourceInUseException":
            raise StreamError(f"stream {name} already exists") from exc
        raise StreamError(f"could not create stream {name}: {exc}") from exc
    if wait:
        stream_wait(client, name, until="ACTIVE")


def stream_delete(client, *, name: str, wait: bool = True) -> None:
    try:
        call_with_retries(lambda: client.delete_stream(StreamName=name), max_attempts=5)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise StreamError(f"stream {name} does not exist") from exc
        raise StreamError(f"could not delete stream {name}: {exc}") from exc
    if wait:
        stream_wait(client, name, until=None)


def stream_describe(client, *, name: str) -> dict:
    """Status, retention and every shard (open or closed) with its parents and ranges."""
    try:
        summary = call_with_retries(lambda: client.describe_stream_summary(StreamName=name), max_attempts=5)[
            "StreamDescriptionSummary"
        ]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise StreamError(f"stream {name} does not exist") from exc
        raise
    shards = []
    response = call_with_retries(lambda: client.list_shards(StreamName=name), max_attempts=5)
    shards.extend(response["Shards"])
    while token := response.get("NextToken"):
        response = call_with_retries(lambda t=token: client.list_shards(NextToken=t), max_attempts=5)
        shards.extend(response["Shards"])
    return {
        "name": summary["StreamName"],
        "status": summary["StreamStatus"],
        "retention_hours": summary.get("RetentionPeriodHours"),
        "open_shards": summary.get("OpenShardCount"),
        "shards": [
            {
                "id": shard["ShardId"],
                "parents": [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p],
                "open": "EndingSequenceNumber" not in shard["SequenceNumberRange"],
                "hash_key_range": [shard["HashKeyRange"]["StartingHashKey"], shard["HashKeyRange"]["EndingHashKey"]],
                "first_sequence": shard["SequenceNumberRange"]["StartingSequenceNumber"],
                "last_sequence": shard["SequenceNumberRange"].get("EndingSequenceNumber"),
            }
            for shard in shards
        ],
    }
