"""The OpenAPI schema tells the truth: schemathesis against a live server finds no 5xx and no answer
that disagrees with the schema (status codes, content types, headers, bodies, valid input accepted,
invalid input refused).

The server is gunicorn on a free loopback port, on the test database, with a real token of a staff
user that may post events, read and import models. Schemathesis runs all its checks through the
phases that make single requests (the schema's examples, boundary values of every constraint,
random valid and invalid inputs), at most ``MAX_EXAMPLES`` per operation: about half a minute on
this machine. (Its stateful phase, which chains requests along links it infers, stops with an
internal error on this API's 200/201 import answers, and adds nothing the other phases miss.)
Its hooks and settings are beside this file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from api_access.services import token_create
from tests.conftest import ROOT, _database_url, load_example_model
from tests.tracking.test_customer_page import order_at

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_api(transactional_db, django_user_model, tmp_path):
    """(base URL, token key, a started instance's transaction id) of a gunicorn serving the test database."""
    load_example_model()
    instance = order_at(f"ORD-{uuid.uuid4().hex[:6]}", "payment.captured")
    user = django_user_model.objects.create_user(username=f"schemathesis-{uuid.uuid4().hex[:6]}", is_staff=True)
    _, key = token_create(name="schemathesis", user=user, can_produce=True, can_read=True)

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "False",
        # Thousands of requests from one token and address: limits it cannot reach.
        "RATE_LIMIT_API_TOKEN": "1000000/minute",
        "RATE_LIMIT_API_ANON": "1000000/minute",
    }
    # The server's log goes to a file: a pipe nobody reads fills up with the 400s' log lines and
    # stops the workers in the middle of a request.
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        # The longest request line is the web server's limit, not the API's: lifted here, so that
        # gunicorn's own 414 for the generator's longest query strings does not stand in for the API.
        [sys.executable, "-m", "gunicorn", "statustracker.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"]
        + ["--limit-request-line", "0"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/schema/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start: {(tmp_path / 'gunicorn.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield base, key, instance.transaction_id
    finally:
        os.killpg(server.pid, 9)
        server.wait()
        log.close()


@pytest.mark.timeout(600)
def test_the_api_answers_as_its_schema_says(live_api, tmp_path):
    base, key, transaction_id = live_api
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"),
        "SCHEMATHESIS_MODEL_ID": "order-fulfilment",
        "SCHEMATHESIS_TRANSACTION_ID": transaction_id,
    }
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/api/schema/?format=json",
        "--header",
        f"Authorization: Token {key}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        # A request that hangs is a failure to report, not a reason to wait for ever.
        "--request-timeout",
        "30",
        "--continue-on-failure",
        "--no-color",
    ]

    # Run where its caches (.schemathesis, .hypothesis) go to the test's temporary folder; its
    # report goes to a file, so that a run cut short still shows how far it came.
    report = tmp_path / "schemathesis.txt"
    with report.open("w") as out:
        try:
            returncode = subprocess.run(
                command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=540
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    output = report.read_text()

    assert returncode == 0, output[-20000:]
    # Every operation of the schema was tested (none left out by the settings beside this file).
    with urllib.request.urlopen(f"{base}/api/schema/?format=json", timeout=10) as response:
        schema = json.load(response)
    operations = sum(len(item) for item in schema["paths"].values())
    assert f"{operations} selected / {operations} total" in output
