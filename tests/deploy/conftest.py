"""moto's server on a free loopback port, for deploying the CloudFormation template in tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tracking.arrival.kinesis.emulator import LOCAL_CREDENTIALS


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str
    log_path: Path

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint_url, **LOCAL_CREDENTIALS)


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """``python -m moto.server`` bound to 127.0.0.1; stopped when the module's tests are done."""
    port = _free_loopback_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = MotoServer(endpoint_url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with {process.returncode}: {log_path.read_text()}")
            try:
                urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer within 30 s: {log_path.read_text()}")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
