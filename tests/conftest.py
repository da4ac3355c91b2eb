"""Shared fixtures: the example model, API clients, and real Celery worker processes."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from models_registry.selectors import clear_definition_cache
from models_registry.services import model_import, parse_documents

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1, message: str = ""):
    """Poll until condition() is truthy; fail the test with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def load_example_model(name: str = "order-fulfilment.yaml"):
    document = parse_documents((EXAMPLES / name).read_text(), filename=name)[0]
    version, _ = model_import(document=document)
    return version


@pytest.fixture(autouse=True)
def _fresh_definition_cache():
    clear_definition_cache()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # Tests render pages without running collectstatic first; production uses the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    # Tests send many requests from one address and token: limits no test reaches by accident.
    # The tests of the limits themselves set low ones (tests/api_access/test_throttling.py, ...).
    settings.STATUSTRACKER_RATE_LIMITS = {scope: "100000/minute" for scope in settings.STATUSTRACKER_RATE_LIMITS}


@pytest.fixture
def example_model(db):
    return load_example_model()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def postgres_only(db):
    if not is_postgres():
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` process on the configured broker and the test database."""

    def __init__(self, *, queues: str, concurrency: int, extra_env: dict | None = None):
        env = {**os.environ, "DATABASE_URL": _database_url(), **(extra_env or {})}
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "statustracker",
                "worker",
                "-l",
                "warning",
                "-c",
                str(concurrency),
                "-Q",
                queues,
                "-n",
                self.name,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )

    def stop(self) -> None:
        """At the end of a test there is nothing left to finish: end the worker and its pool at once
        (a graceful Celery shutdown takes about six seconds)."""
        self.kill()

    def kill(self) -> None:
        """SIGKILL the main process and its pool children: the task in hand is lost."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def start_worker(transactional_db):
    """Start real Celery worker processes; all are stopped when the test ends."""
    from statustracker.celery import app

    app.control.purge()
    workers: list[WorkerProcess] = []

    def start(*, queues: str | None = None, concurrency: int = 2, extra_env: dict | None = None) -> WorkerProcess:
        worker = WorkerProcess(
            queues=queues or settings.CELERY_TASK_DEFAULT_QUEUE, concurrency=concurrency, extra_env=extra_env
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def api_client(db, django_user_model):
    """A DRF test client holding a fresh API token made by the real token service.

    ``api_client(produce=True, read=False, staff=False, permissions=(), username=None)``; the
    client's ``token`` and ``key`` attributes are the token row and its plain key.
    """
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    from api_access.services import token_create

    def make(*, produce=False, read=False, staff=False, permissions=(), username=None):
        # No password: the token is the credential, and hashing one would slow every test.
        user = django_user_model.objects.create_user(
            username=username or f"user-{uuid.uuid4().hex[:8]}", password=None, is_staff=staff
        )
        for codename in permissions:
            app_label, code = codename.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=code))
        token, key = token_create(name="test", user=user, can_produce=produce, can_read=read)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.token, client.key, client.user = token, key, user
        return client

    return make


def edit_draft(key: str, change: Callable[[dict], object]) -> None:
    """Change a model's draft in place as an editor would, without publishing it."""
    from models_registry.models import StatusModel

    status_model = StatusModel.objects.get(key=key)
    draft = copy.deepcopy(status_model.draft)
    change(draft)
    status_model.draft = draft
    status_model.save()


def transition_of(draft: dict, event: str) -> dict:
    return next(t for t in draft["transitions"] if t["event"] == event)


def state_of_draft(draft: dict, key: str) -> dict:
    return next(s for s in draft["states"] if s["key"] == key)
