"""Everything that writes status model definitions: publish a draft, import a document."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable

import yaml
from django.db import transaction

from models_registry.definition import MODEL_ID_RE, DefinitionError, canonical_order
from models_registry.models import ModelVersion, StatusModel
from models_registry.validation import document_validate


def draft_document(*, status_model: StatusModel) -> dict:
    """The draft as a (not yet validated) status model document; its id is always the model's."""
    draft = status_model.draft if isinstance(status_model.draft, dict) else {}
    return {**copy.deepcopy(draft), "id": status_model.key}


def draft_errors(document: object) -> dict[str, list[str]]:
    """What stops a document from being published (field path -> messages); empty when nothing."""
    try:
        document_validate(document)
    except DefinitionError as error:
        return error.errors
    return {}


@transaction.atomic
def draft_save(*, document: dict, status_model: StatusModel | None = None) -> StatusModel:
    """Keep a draft as it is, errors and all (``draft_errors`` says what they are).

    Without ``status_model`` a new model is created with the document's id, which must be a
    valid model id that no model has yet (``DefinitionError`` on ``id`` otherwise).
    """
    if not isinstance(document, dict):
        raise DefinitionError({"": ["A status model must be an object."]})
    if status_model is None:
        key = document.get("id")
        if not isinstance(key, str) or not MODEL_ID_RE.fullmatch(key):
            raise DefinitionError({"id": ["Must match [a-z0-9][a-z0-9._-]{0,63}."]})
        if StatusModel.objects.filter(key=key).exists():
            raise DefinitionError({"id": [f"A model with the id {key!r} exists already."]})
        status_model = StatusModel(key=key)
    status_model.draft = {**document, "id": status_model.key}
    status_model.save()
    return status_model


@transaction.atomic
def draft_discard(*, status_model: StatusModel) -> ModelVersion:
    """Put the latest published version back as the draft; ``ModelVersion.DoesNotExist`` if none."""
    latest = status_model.versions.order_by("-number").first()
    if latest is None:
        raise ModelVersion.DoesNotExist(f"{status_model.key} has no published version to go back to")
    status_model.draft = canonical_order(latest.document)
    status_model.save(update_fields=["draft", "updated_at"])
    return latest


@transaction.atomic
def draft_import(*, document: object) -> StatusModel:
    """A valid document becomes its model's draft (the model is created if new); nothing is published."""
    canonical = document_validate(document)
    status_model = StatusModel.objects.filter(key=canonical["id"]).first()
    return draft_save(document=canonical, status_model=status_model)


def _publish_document(*, status_model: StatusModel, document: dict, user=None) -> tuple[ModelVersion, bool]:
    # Lock the model row so two publishers cannot both take the same version number.
    StatusModel.objects.select_for_update().get(pk=status_model.pk)
    latest = status_model.versions.order_by("-number").first()
    if latest is not None and latest.document == document:
        return latest, False
    version = ModelVersion.objects.create(
        model=status_model,
        number=(latest.number + 1) if latest else 1,
        document=document,
        published_by=user if user is not None and user.is_authenticated else None,
    )
    return version, True


@transaction.atomic
def model_publish(*, status_model: StatusModel, user=None) -> tuple[ModelVersion, bool]:
    """Validate the draft and publish it as a new version (unless it equals the latest)."""
    document = document_validate(draft_document(status_model=status_model))
    status_model.draft = document
    status_model.save(update_fields=["draft", "updated_at"])
    return _publish_document(status_model=status_model, document=document, user=user)


@transaction.atomic
def model_import(*, document: dict, user=None) -> tuple[ModelVersion, bool]:
    """Create or update a model from a document and publish it; returns (version, created)."""
    status_model = draft_import(document=document)
    return _publish_document(status_model=status_model, document=status_model.draft, user=user)


def parse_documents(text: str, *, filename: str = "") -> list:
    """Read one or more documents from YAML (multi-document streams too) or JSON text."""
    if filename.endswith(".json"):
        loaded = json.loads(text)
        return loaded if isinstance(loaded, list) else [loaded]
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    if len(documents) == 1 and isinstance(documents[0], list):
        return documents[0]
    return documents


def dump_documents(documents: Iterable[dict], *, fmt: str) -> str:
    documents = [canonical_order(document) for document in documents]
    if fmt == "json":
        payload = documents[0] if len(documents) == 1 else documents
        return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    return "---\n".join(
        yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
        for doc in documents
    )


__all__ = [
    "DefinitionError",
    "draft_discard",
    "draft_document",
    "draft_errors",
    "draft_import",
    "draft_save",
    "dump_documents",
    "model_import",
    "model_publish",
    "parse_documents",
]
