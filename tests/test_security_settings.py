"""`manage.py check --deploy` is clean with a production environment (the .env.example production block)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # two Django start-ups in subprocesses, a few seconds


def production_environment(tmp_path) -> dict[str, str]:
    """What a production deployment sets, as in the production block of .env.example."""
    return {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "status.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://status.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "SECURE_SSL_REDIRECT": "True",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
        "SECURE_HSTS_PRELOAD": "True",
        "NUM_PROXIES": "1",
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }


def deploy_check(tmp_path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    # Only PATH from this process: nothing of the test run's own settings leaks in. Variables not
    # given fall back to the settings' defaults (or a developer's .env, which these all override).
    env = {"PATH": os.environ["PATH"], "STATUSTRACKER_VAR_DIR": str(tmp_path), **environment}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_checks_pass_with_a_production_environment(tmp_path):
    result = deploy_check(tmp_path, production_environment(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_without_the_https_settings_the_deploy_checks_complain(tmp_path):
    environment = production_environment(tmp_path)
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER"):
        environment.pop(name)
    # The defaults are for plain-HTTP local runs: explicitly off, whatever a developer's .env says.
    environment.update(SECURE_SSL_REDIRECT="False", SECURE_HSTS_SECONDS="0")

    result = deploy_check(tmp_path, environment)

    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr
