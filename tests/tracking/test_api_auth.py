"""API authentication and scopes: no token 401, wrong scope 403, right scope 2xx, on every endpoint."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from api_access.models import ApiToken, hash_token
from tracking.models import InboxEvent

pytestmark = pytest.mark.django_db

MODEL_DOCUMENT = {
    "id": "claim",
    "name": "Insurance claim",
    "initial_state": "filed",
    "states": [{"key": "filed", "label": "Filed"}, {"key": "paid", "label": "Paid", "kind": "success"}],
    "transitions": [{"event": "claim.paid", "from": ["filed"], "to": "paid"}],
}


def _event() -> dict:
    return {
        "event_id": f"e-{uuid.uuid4().hex}",
        "model_id": "order-fulfilment",
        "transaction_id": "ORD-1",
        "event_type": "order.placed",
    }


def _call(client, operation: str):
    if operation == "post events":
        return client.post("/api/v1/events", _event(), format="json")
    if operation == "list instances":
        return client.get("/api/v1/instances")
    if operation == "read instance":
        return client.get("/api/v1/instances/order-fulfilment/ORD-404")
    if operation == "list models":
        return client.get("/api/v1/models")
    if operation == "read model":
        return client.get("/api/v1/models/order-fulfilment")
    if operation == "import model":
        return client.post("/api/v1/models", MODEL_DOCUMENT, format="json")
    raise AssertionError(operation)


OPERATIONS = ["post events", "list instances", "read instance", "list models", "read model", "import model"]
# What each kind of credential may do: the expected status of each operation. "read instance"
# asks for an instance that does not exist, so a reader gets 404 (after passing the scope check).
MATRIX = {
    "producer": {
        "post events": 202,
        "list instances": 403,
        "read instance": 403,
        "list models": 403,
        "read model": 403,
        "import model": 403,
    },
    "reader": {
        "post events": 403,
        "list instances": 200,
        "read instance": 404,
        "list models": 200,
        "read model": 200,
        "import model": 403,
    },
    "producer+reader": {
        "post events": 202,
        "list instances": 200,
        "read instance": 404,
        "list models": 200,
        "read model": 200,
        "import model": 403,
    },
    "staff, no scope": {
        "post events": 403,
        "list instances": 403,
        "read instance": 403,
        "list models": 403,
        "read model": 403,
        "import model": 201,
    },
    "definitions editor, no scope": {
        "post events": 403,
        "list instances": 403,
        "read instance": 403,
        "list models": 403,
        "read model": 403,
        "import model": 201,
    },
}
CREDENTIALS = {
    "producer": {"produce": True},
    "reader": {"read": True},
    "producer+reader": {"produce": True, "read": True},
    "staff, no scope": {"staff": True},
    "definitions editor, no scope": {"permissions": ["models_registry.edit_definitions"]},
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_token_is_401_with_a_challenge(example_model, operation):
    response = _call(APIClient(), operation)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert InboxEvent.objects.count() == 0


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    "header",
    ["Token not-a-key", "Token", "Token two parts", "Bearer wrong"],
    ids=["unknown key", "no key", "spaces", "unknown bearer"],
)
def test_bad_credentials_are_401(example_model, operation, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = _call(client, operation)

    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.parametrize("kind", list(MATRIX))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_scope_matrix(example_model, api_client, kind, operation):
    client = api_client(**CREDENTIALS[kind])

    response = _call(client, operation)

    assert response.status_code == MATRIX[kind][operation], response.content
    if response.status_code == 403:
        assert "scope" in response.json()["detail"] or "permission" in response.json()["detail"]


def test_revoked_token_is_401(example_model, api_client):
    client = api_client(produce=True, read=True)
    ApiToken.objects.filter(pk=client.token.pk).update(revoked=True)

    response = client.post("/api/v1/events", _event(), format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Token revoked."
    assert InboxEvent.objects.count() == 0


def test_inactive_user_is_401(example_model, api_client):
    client = api_client(read=True)
    client.user.is_active = False
    client.user.save()

    assert client.get("/api/v1/models").status_code == 401


def test_bearer_keyword_is_accepted(example_model, api_client):
    client = api_client(read=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {client.key}")

    assert client.get("/api/v1/models").status_code == 200


def test_only_the_key_hash_is_stored(api_client):
    client = api_client(read=True)

    token = ApiToken.objects.get(pk=client.token.pk)
    assert token.key_hash == hash_token(client.key)
    assert client.key not in {token.key_hash, token.prefix, token.name}
    assert client.key.startswith(token.prefix)


def test_last_used_at_is_touched_at_most_once_a_minute(example_model, api_client):
    client = api_client(read=True)
    assert ApiToken.objects.get(pk=client.token.pk).last_used_at is None

    client.get("/api/v1/models")
    first = ApiToken.objects.get(pk=client.token.pk).last_used_at
    client.get("/api/v1/models")
    second = ApiToken.objects.get(pk=client.token.pk).last_used_at
    # A minute later the next request records itself again.
    ApiToken.objects.filter(pk=client.token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/models")
    third = ApiToken.objects.get(pk=client.token.pk).last_used_at

    assert first is not None
    assert second == first
    assert third > first - timedelta(minutes=2)
    assert timezone.now() - third < timedelta(minutes=1)


def test_create_api_token_prints_a_working_key(example_model, django_user_model):
    django_user_model.objects.create_user(username="billing")
    out, err = io.StringIO(), io.StringIO()

    call_command("create_api_token", "--name", "billing feed", "--user", "billing", "--produce", stdout=out, stderr=err)

    key = out.getvalue().strip()
    token = ApiToken.objects.get(key_hash=hash_token(key))
    assert (token.name, token.user.username, token.can_produce, token.can_read) == (
        "billing feed",
        "billing",
        True,
        False,
    )
    assert "produce" in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post("/api/v1/events", _event(), format="json").status_code == 202
    assert client.get("/api/v1/instances").status_code == 403


def test_create_api_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("create_api_token", "--name", "x", "--user", "ghost", "--read", stdout=io.StringIO())
    assert ApiToken.objects.count() == 0
