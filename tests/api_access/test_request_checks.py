"""What the API plumbing refuses before a view runs, and how: every 400 has ``detail`` and ``errors``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(api_client):
    return api_client(read=True, staff=True)


def test_a_body_that_is_not_json_is_a_400_with_errors(editor):
    response = editor.post("/api/v1/models", b"\x00", content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("JSON parse error")
    assert body["errors"] == {"": [body["detail"]]}


@pytest.mark.parametrize(
    "document",
    [
        '{"id": "claim", "name": "a\\u0000b"}',
        '{"id": "claim", "states": [{"key\\u0000": 1}]}',
        '{"id": "claim", "name": "\\ud800"}',
    ],
)
def test_text_the_database_cannot_store_is_a_400_not_a_500(editor, document):
    response = editor.post("/api/v1/models", document.encode(), content_type="application/json")

    assert response.status_code == 400
    assert "cannot be stored" in response.json()["errors"][""][0]


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=", "offset=-1", "offset=1.5", "offset="])
def test_a_malformed_page_is_a_400(api_client, query):
    response = api_client(read=True).get(f"/api/v1/models?{query}")

    assert response.status_code == 400
    name = query.split("=")[0]
    assert response.json()["errors"][name] == [f"Must be an integer of at least {1 if name == 'limit' else 0}."]


def test_a_limit_above_the_ceiling_is_cut_to_it(api_client, example_model):
    response = api_client(read=True).get("/api/v1/models?limit=100000&offset=0")

    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/instances?updated_since=", "updated_since"),
        ("/api/v1/instances?model_id=", "model_id"),
        ("/api/v1/instances?status=", "status"),
        ("/api/v1/models/order-fulfilment?version=", "version"),
    ],
)
def test_an_empty_query_parameter_is_invalid_not_absent(api_client, example_model, path, parameter):
    response = api_client(read=True).get(path)

    assert response.status_code == 400
    assert parameter in response.json()["errors"]


def test_a_model_id_with_a_trailing_newline_is_refused(api_client):
    # Python's "$" also matches before a final newline; the id must be the whole string.
    editor = api_client(staff=True)
    document = {
        "id": "claim\n",
        "name": "Claim",
        "initial_state": "filed",
        "states": [{"key": "filed", "label": "Filed"}],
    }

    response = editor.post("/api/v1/models", document, format="json")

    assert response.status_code == 400
    assert "id" in response.json()["errors"]
