"""Run kinesalite (npm, pinned in package.json) on 127.0.0.1 for tests and local runs.

kinesalite's own ``cli.js`` has no host option and listens on every interface, so the server is
started through kinesalite's library API with ``listen(port, host)``, 127.0.0.1 unless told
otherwise: nothing outside the machine can reach it. Port 0 lets the system pick a free port, which
parallel test runs need. Another address is for runs across hosts (bench/multihost.py).

Run it alone with ``python -m tracking.arrival.kinesis.emulator --port 4567``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[3]
KINESALITE = ROOT / "node_modules" / "kinesalite"

# Real Kinesis keeps a stream in CREATING/UPDATING for tens of seconds; locally there is no reason
# to wait, but a short delay keeps the state changes visible to the code that waits for them.
DEFAULT_OPTIONS = {"createStreamMs": 50, "deleteStreamMs": 50, "updateStreamMs": 50, "shardLimit": 100}

SERVER_SCRIPT = """
const kinesalite = require(process.argv[1]);
const port = parseInt(process.argv[2], 10);
const server = kinesalite(JSON.parse(process.argv[3])).listen(port, process.argv[4], () => {
  const address = server.address();
  console.log('Listening at http://%s:%s', address.address, address.port);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
"""

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}


def local_client(endpoint_url: str):
    """A boto3 Kinesis client for a local server: dummy credentials, no botocore retries."""
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
        **LOCAL_CREDENTIALS,
    )


class KinesaliteError(RuntimeError):
    pass


class Kinesalite:
    """One kinesalite server process; ``start`` returns once it answers API calls."""

    def __init__(
        self, *, port: int = 0, host: str = "127.0.0.1", options: dict | None = None, log_path: Path | None = None
    ):
        self.requested_port = port
        self.host = host
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self.log_path = log_path
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise KinesaliteError("kinesalite is not running")
        return f"http://{self.host}:{self.port}"

    def client(self):
        """A boto3 Kinesis client for this server, with dummy credentials."""
        return local_client(self.endpoint_url)

    def start(self, *, timeout: float = 20.0) -> Kinesalite:
        node = shutil.which("node")
        if node is None:
            raise KinesaliteError("node is not installed; kinesalite needs Node.js")
        if not (KINESALITE / "package.json").exists():
            raise KinesaliteError(f"kinesalite is not installed in {KINESALITE.parent}; run `npm install` in {ROOT}")
        self.process = subprocess.Popen(
            [node, "-e", SERVER_SCRIPT, str(KINESALITE), str(self.requested_port), json.dumps(self.options), self.host],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        match = re.search(r":(\d+)\s*$", first_line[0]) if first_line else None
        if match is None:
            self.stop()
            raise KinesaliteError(f"kinesalite did not start: {first_line[0] if first_line else 'no output'}")
        self.port = int(match.group(1))
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait_until_answering(timeout=timeout)
        return self

    def _drain(self) -> None:
        """Keep reading the server's output so that it never blocks on a full pipe."""
        sink = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115 - closed below
        try:
            for line in self.process.stdout:
                if sink:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink:
                sink.close()

    def _wait_until_answering(self, *, timeout: float) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_streams()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise KinesaliteError(f"kinesalite did not answer on {self.endpoint_url}: {exc}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Kinesalite:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run kinesalite on 127.0.0.1 until interrupted.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KINESALITE_PORT", "4567")))
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Kinesalite(port=args.port, host=args.host) as server:
        print(f"kinesalite listening at {server.endpoint_url}", flush=True)  # noqa: T201
        while not stop.wait(1.0):
            if server.process.poll() is not None:
                raise SystemExit(f"kinesalite exited with status {server.process.returncode}")


if __name__ == "__main__":
    main()
