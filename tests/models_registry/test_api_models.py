"""GET/POST /api/v1/models and GET /api/v1/models/{id}: versions, and every spec validation case."""

from __future__ import annotations

import copy
import json

import pytest

from models_registry.models import ModelVersion, StatusModel

pytestmark = pytest.mark.django_db

VALID = {
    "id": "claim",
    "name": "Insurance claim",
    "initial_state": "filed",
    "states": [
        {"key": "filed", "label": "Claim filed"},
        {"key": "review", "label": "In review"},
        {"key": "paid", "label": "Paid", "kind": "success"},
        {"key": "rejected", "label": "Rejected", "kind": "failure"},
    ],
    "transitions": [
        {"event": "claim.reviewed", "from": ["filed"], "to": "review", "set": {"adjuster": "data.adjuster"}},
        {"event": "claim.paid", "from": ["review"], "to": "paid", "when": "data.amount > `0`"},
        {"event": "claim.rejected", "from": "*", "to": "rejected"},
    ],
    "milestones": [
        {"key": "submitted", "label": "Submitted", "states": ["filed"]},
        {"key": "assessed", "label": "Assessed", "states": ["review"]},
    ],
    "display": [{"field": "adjuster", "label": "Adjuster"}],
}


def changed(edit) -> dict:
    document = copy.deepcopy(VALID)
    edit(document)
    return document


@pytest.fixture
def editor(api_client):
    return api_client(permissions=["models_registry.edit_definitions"], username="editor")


@pytest.fixture
def reader(api_client):
    return api_client(read=True)


def test_import_publishes_versions(editor, reader):
    first = editor.post("/api/v1/models", VALID, format="json")
    same = editor.post("/api/v1/models", VALID, format="json")
    second = editor.post("/api/v1/models", changed(lambda d: d.update(name="Claim")), format="json")

    assert first.status_code == 201
    assert (first.json()["id"], first.json()["version"], first.json()["created"]) == ("claim", 1, True)
    assert first.json()["published_by"] == "editor"
    assert first.json()["document"]["park_ttl"] == "P7D", "the canonical document, defaults filled in"
    assert same.status_code == 200
    assert (same.json()["version"], same.json()["created"]) == (1, False)
    assert second.status_code == 201
    assert (second.json()["version"], second.json()["versions"]) == (2, [1, 2])
    assert ModelVersion.objects.filter(model__key="claim").count() == 2


def test_read_current_and_earlier_versions(editor, reader):
    editor.post("/api/v1/models", VALID, format="json")
    editor.post("/api/v1/models", changed(lambda d: d.update(name="Claim v2")), format="json")

    current = reader.get("/api/v1/models/claim")
    first = reader.get("/api/v1/models/claim?version=1")
    missing_version = reader.get("/api/v1/models/claim?version=3")
    missing_model = reader.get("/api/v1/models/nothing")
    bad_version = reader.get("/api/v1/models/claim?version=one")
    zero = reader.get("/api/v1/models/claim?version=0")

    assert current.status_code == 200
    assert (current.json()["version"], current.json()["document"]["name"]) == (2, "Claim v2")
    assert current.json()["versions"] == [1, 2]
    assert first.status_code == 200
    assert (first.json()["version"], first.json()["document"]["name"]) == (1, "Insurance claim")
    assert first.json()["document"]["transitions"][1]["when"] == "data.amount > `0`"
    assert missing_version.status_code == missing_model.status_code == 404
    assert "version 3" in missing_version.json()["detail"]
    assert bad_version.status_code == zero.status_code == 400
    assert list(bad_version.json()["errors"]) == ["version"]


def test_list_models(example_model, editor, reader):
    editor.post("/api/v1/models", VALID, format="json")
    StatusModel.objects.create(key="draft-only", draft={"name": "Never published", "initial_state": "a"})

    response = reader.get("/api/v1/models")

    assert response.status_code == 200
    assert response.json()["count"] == 2
    rows = response.json()["results"]
    assert [(r["id"], r["latest_version"], r["handler"]) for r in rows] == [
        ("claim", 1, "declarative"),
        ("order-fulfilment", 1, "declarative"),
    ]
    assert rows[1]["name"] == "Order fulfilment"


# Each case: the document, and the field paths the errors must name.
INVALID = {
    "unknown state in to": (
        changed(lambda d: d["transitions"][0].update(to="nowhere")),
        {"transitions[0].to": "Unknown state key 'nowhere'"},
    ),
    "unknown state in from": (
        changed(lambda d: d["transitions"][1].update({"from": ["review", "ghost"]})),
        {"transitions[1].from[1]": "Unknown state key 'ghost'"},
    ),
    "unknown initial state": (
        changed(lambda d: d.update(initial_state="start")),
        {"initial_state": "Unknown state key 'start'"},
    ),
    "unknown state in a milestone": (
        changed(lambda d: d["milestones"][1]["states"].append("limbo")),
        {"milestones[1].states[1]": "Unknown state key 'limbo'"},
    ),
    "terminal state with outgoing transitions": (
        changed(lambda d: d["transitions"].append({"event": "claim.reopened", "from": ["paid"], "to": "review"})),
        {"transitions[3].from[0]": "'paid' is terminal and cannot have outgoing transitions"},
    ),
    "unreachable state": (
        changed(lambda d: d["states"].insert(2, {"key": "appeal", "label": "Appeal"})),
        {"states[2].key": "State 'appeal' is unreachable from 'filed'"},
    ),
    "when does not compile": (
        changed(lambda d: d["transitions"][1].update(when="data.amount >")),
        {"transitions[1].when": "JMESPath expression does not compile"},
    ),
    "set does not compile": (
        changed(lambda d: d["transitions"][0].update(set={"adjuster": "data.[adjuster"})),
        {"transitions[0].set.adjuster": "JMESPath expression does not compile"},
    ),
    "duplicate state key": (
        changed(lambda d: d["states"].append({"key": "review", "label": "Again"})),
        {"states[4].key": "Duplicate state key 'review'"},
    ),
    "duplicate milestone key": (
        changed(lambda d: d["milestones"].append({"key": "assessed", "label": "Again", "states": ["paid"]})),
        {"milestones[2].key": "Duplicate milestone key 'assessed'"},
    ),
    "duplicate display field": (
        changed(lambda d: d["display"].append({"field": "adjuster", "label": "Again"})),
        {"display[1].field": "Duplicate display field 'adjuster'"},
    ),
    "unknown handler": (
        changed(lambda d: d.update(handler="my.module.handler")),
        {"handler": "Unknown handler 'my.module.handler'"},
    ),
    "several errors at once": (
        changed(lambda d: (d.update(id="Bad Id", handler="nope"), d["states"][0].pop("label"))),
        {"id": "Must match", "handler": "Unknown handler", "states[0].label": "required"},
    ),
    "not an object": ([VALID], {"": "must be an object"}),
}


@pytest.mark.parametrize(("document", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_models_are_400_with_field_paths(editor, document, expected):
    response = editor.post("/api/v1/models", document, format="json")

    assert response.status_code == 400
    answer = response.json()
    assert answer["detail"] == "The status model is invalid."
    assert set(answer["errors"]) == set(expected)
    for path, fragment in expected.items():
        assert any(fragment in message for message in answer["errors"][path]), answer["errors"][path]
    assert not StatusModel.objects.exists(), "nothing of an invalid model is stored"


def test_an_invalid_new_version_leaves_the_published_one(editor, reader):
    editor.post("/api/v1/models", VALID, format="json")

    response = editor.post("/api/v1/models", changed(lambda d: d.update(handler="nope")), format="json")

    assert response.status_code == 400
    current = reader.get("/api/v1/models/claim").json()
    assert (current["version"], current["document"]["handler"]) == (1, "declarative")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"id": "claim", ', "JSON parse error"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["not JSON", "nested past the JSON parser's limit"],
)
def test_unreadable_bodies_are_400_not_500(editor, body, fragment):
    response = editor.generic("POST", "/api/v1/models", body, content_type="application/json")

    assert response.status_code == 400
    assert fragment in response.json()["detail"]


def test_a_body_over_the_request_limit_is_400(editor, settings):
    settings.STATUSTRACKER_MAX_REQUEST_BYTES = 1000
    document = changed(lambda d: d.update(description="x" * 2000))

    response = editor.generic("POST", "/api/v1/models", json.dumps(document), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Request body larger than 1000 bytes."
    assert not StatusModel.objects.exists()
