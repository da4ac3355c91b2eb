"""The JSON lines a process logged (the Kinesis consumer's ``--log-format json``), read back.

Pure Python, for the tests and for the benchmarks that run consumers outside the suite.
"""

from __future__ import annotations

import json
from pathlib import Path


def json_lines(path: Path) -> list[dict]:
    """Every line of the file that is a JSON object, in order; other lines (tracebacks) are skipped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries
