"""Run as a process by tests (PostgreSQL): two producers store the same batches in overlapping
transactions, and each says what became of every event.

``python -m tests.duplicate_ingester DIR NAME OTHER FILE`` reads FILE (JSON Lines, one batch per
blank-line-separated block). As in ``tests.concurrent_ingester``, each batch starts only when
OTHER has reached it too. Each batch is ingested inside an outer transaction (as the Kinesis
consumer does), whose commit waits until OTHER is blocked by this transaction (it has reached the
rows this one stored and waits for them: ``pg_blocking_pids``) or has ingested the batch itself.
So the two transactions always overlap: whichever producer stores a batch first, the other has
done everything up to its insert before that commit. No timing is guessed.

After each batch it appends one JSON line to ``DIR/NAME-results.jsonl``: ``{"batch": n,
"accepted": [event ids], "duplicate": [...], "rejected": [...]}``, from the results
``events_ingest`` returned. Exits 1 on an error (its message in DIR/NAME-failed), 2 when OTHER
failed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path

# A safety valve: a wait that cannot end fails the run instead of hanging it.
LONGEST_WAIT_SECONDS = 60


class OtherFailed(Exception):
    pass


def _wait_for(condition, folder: Path, other: str, what: str) -> None:
    give_up = time.monotonic() + LONGEST_WAIT_SECONDS
    while not condition():
        if (folder / f"{other}-failed").exists():
            raise OtherFailed
        if time.monotonic() > give_up:
            raise TimeoutError(f"waited {LONGEST_WAIT_SECONDS}s for {what}")
        time.sleep(0.001)


def main(directory: str, name: str, other: str, path: str) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from tracking.arrival.ingest import RawEvent, events_ingest

    folder = Path(directory)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (folder / f"{name}-pid.tmp").write_text(str(cursor.fetchone()[0]))
    (folder / f"{name}-pid.tmp").rename(folder / f"{name}-pid")

    def other_ingested_or_blocked_by_us(marker: Path) -> bool:
        if marker.exists():
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [other_pid])
            return cursor.fetchone()[0]

    blocks = [block for block in Path(path).read_bytes().split(b"\n\n") if block.strip()]
    try:
        _wait_for((folder / f"{other}-pid").exists, folder, other, "the other producer to start")
        other_pid = int((folder / f"{other}-pid").read_text())
        for number, block in enumerate(blocks):
            items = [RawEvent(line, f"{path}#{number}") for line in block.splitlines() if line.strip()]
            (folder / f"{name}-{number}").touch()
            _wait_for((folder / f"{other}-{number}").exists, folder, other, f"batch {number}")
            with transaction.atomic():
                results = events_ingest(items=items, source_kind="file")
                (folder / f"{name}-ingested-{number}").touch()
                _wait_for(
                    partial(other_ingested_or_blocked_by_us, folder / f"{other}-ingested-{number}"),
                    folder,
                    other,
                    f"the other producer to reach batch {number}'s rows",
                )
            outcome = {"batch": number, "accepted": [], "duplicate": [], "rejected": []}
            for result in results:
                outcome[result.status].append(result.event_id)
            with open(folder / f"{name}-results.jsonl", "a") as log:
                log.write(json.dumps(outcome) + "\n")
    except OtherFailed:
        return 2
    except Exception as error:
        (folder / f"{name}-failed").write_text(f"{type(error).__name__}: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
