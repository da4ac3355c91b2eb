"""Admin login attempts: django-axes locks a user name out from one address after repeated failures."""

from __future__ import annotations

import uuid

import pytest
from axes.models import AccessAttempt

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user(
        username=f"ops-{uuid.uuid4().hex[:6]}", password=PASSWORD, is_staff=True, is_superuser=True
    )


def login(client, username: str, password: str, address: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_repeated_failures_lock_the_user_out_from_that_address(client, settings, admin_user):
    settings.AXES_FAILURE_LIMIT = 3
    attacker = "198.51.100.23"

    # Given two failed attempts, the login form answers as usual
    for _ in range(2):
        assert login(client, admin_user.username, "wrong", attacker).status_code == 200

    # When the third fails, the pair is locked out: 429 with Retry-After (the cool-off)
    locked = login(client, admin_user.username, "wrong", attacker)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert "Too many failed login attempts" in locked.content.decode()

    # Then even the right password is refused from that address
    assert login(client, admin_user.username, PASSWORD, attacker).status_code == 429
    # The lockout is visible to operators in the database, which every process shares.
    attempt = AccessAttempt.objects.get(username=admin_user.username, ip_address=attacker)
    assert attempt.failures_since_start >= 3


def test_the_lockout_is_per_user_and_address(client, settings, admin_user):
    settings.AXES_FAILURE_LIMIT = 2
    attacker = "198.51.100.24"
    for _ in range(2):
        login(client, admin_user.username, "wrong", attacker)
    assert login(client, admin_user.username, PASSWORD, attacker).status_code == 429

    # The real operator, elsewhere, still gets in
    assert login(client, admin_user.username, PASSWORD, "192.0.2.10").status_code == 302
    # and the attacker's address can still try another name (counted on its own)
    assert login(client, "someone-else", "wrong", attacker).status_code == 200


def test_the_lockout_ends_after_the_cool_off(client, settings, admin_user):
    settings.AXES_FAILURE_LIMIT = 2
    attacker = "198.51.100.25"
    for _ in range(2):
        login(client, admin_user.username, "wrong", attacker)
    assert login(client, admin_user.username, PASSWORD, attacker).status_code == 429

    # When the cool-off has passed since the last attempt
    AccessAttempt.objects.filter(ip_address=attacker).update(
        attempt_time=AccessAttempt.objects.get(ip_address=attacker).attempt_time - settings.AXES_COOLOFF_TIME
    )

    assert login(client, admin_user.username, PASSWORD, attacker).status_code == 302
