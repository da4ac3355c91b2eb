"""Structured logs for the consumer: one JSON object a line, with the shard and worker as fields.

Log collectors (CloudWatch, Loki, journald) index the fields; the plain format is for people
watching a terminal.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Fields the consumer passes with ``extra=``; anything else on the record is left out.
FIELDS = (
    "event",
    "worker",
    "stream",
    "shard",
    "records",
    "sequence",
    "sub_sequence",
    "lease_counter",
    "reason",
    "cause",
    "delay",
    "millis_behind",
    "rate",
    "to_worker",
    "started",
    "shards",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": round(record.created, 6),
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                document[name] = record.__dict__[name]
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure(*, fmt: str, level: str) -> None:
    """Use ``fmt`` ("json" or "plain") on the root handlers and ``level`` for the consumer's loggers."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    if fmt == "json":
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
    logging.getLogger("tracking.arrival.kinesis").setLevel(level.upper())
