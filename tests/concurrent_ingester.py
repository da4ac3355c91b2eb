"""Run as a process by tests: ingest batches in step with another process of the same kind.

``python -m tests.concurrent_ingester DIR NAME OTHER FILE`` reads FILE (JSON Lines, one batch per
blank-line-separated block) and, before each batch, waits until OTHER has reached the same
batch, so that the two processes' database transactions overlap. Exits 1 on a database error
(its message in DIR/NAME-failed), 2 when OTHER failed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(directory: str, name: str, other: str, path: str) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")
    import django

    django.setup()
    from django.db import DatabaseError

    from tracking.arrival.ingest import RawEvent, events_ingest

    folder = Path(directory)
    blocks = [block for block in Path(path).read_bytes().split(b"\n\n") if block.strip()]
    for number, block in enumerate(blocks):
        items = [RawEvent(line, f"{path}#{number}") for line in block.splitlines() if line.strip()]
        (folder / f"{name}-{number}").touch()
        while not (folder / f"{other}-{number}").exists():
            if (folder / f"{other}-failed").exists():
                return 2
            time.sleep(0.001)
        try:
            events_ingest(items=items, source_kind="file")
        except DatabaseError as error:
            (folder / f"{name}-failed").write_text(f"batch {number}: {type(error).__name__}: {error}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
