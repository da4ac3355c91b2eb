"""Everything that writes status model definitions: publish a draft, import a document."""

from __future__ import annotations

import json
from collections.abc import Iterable

import yaml
from django.db import transaction

from models_registry.definition import ANY_STATE, DefinitionError, canonical_order
from models_registry.models import ModelVersion, StateDefinition, StatusModel, TransitionDefinition
from models_registry.validation import document_validate


def draft_document(*, status_model: StatusModel) -> dict:
    """The draft's rows as a (not yet validated) status model document."""
    states = []
    for state in status_model.states.all():
        entry = {"key": state.key, "label": state.label, "kind": state.kind}
        if state.description:
            entry["description"] = state.description
        if state.expected_within:
            entry["expected_within"] = state.expected_within
        states.append(entry)
    transitions = []
    for row in status_model.transitions.all():
        sources = row.from_states.strip()
        entry = {
            "event": row.event,
            "from": ANY_STATE if sources == ANY_STATE else [s.strip() for s in sources.split(",") if s.strip()],
            "to": row.to_state,
        }
        if row.when:
            entry["when"] = row.when
        if row.set_fields:
            entry["set"] = row.set_fields
        transitions.append(entry)
    return {
        "id": status_model.key,
        "name": status_model.name,
        "description": status_model.description,
        "handler": status_model.handler,
        "initial_state": status_model.initial_state,
        "start_events": status_model.start_events,
        "park_ttl": status_model.park_ttl,
        "states": states,
        "transitions": transitions,
        "milestones": status_model.milestones,
        "display": status_model.display,
    }


def _write_draft(*, status_model: StatusModel, document: dict) -> None:
    for field in (
        "name",
        "description",
        "handler",
        "initial_state",
        "start_events",
        "park_ttl",
        "milestones",
        "display",
    ):
        setattr(status_model, field, document[field])
    status_model.save()
    status_model.states.all().delete()
    status_model.transitions.all().delete()
    StateDefinition.objects.bulk_create(
        StateDefinition(
            model=status_model,
            position=i,
            key=s["key"],
            label=s["label"],
            description=s.get("description", ""),
            kind=s["kind"],
            expected_within=s.get("expected_within", ""),
        )
        for i, s in enumerate(document["states"])
    )
    TransitionDefinition.objects.bulk_create(
        TransitionDefinition(
            model=status_model,
            position=i,
            event=t["event"],
            from_states=ANY_STATE if t["from"] == ANY_STATE else ", ".join(t["from"]),
            to_state=t["to"],
            when=t.get("when", ""),
            set_fields=t.get("set", {}),
        )
        for i, t in enumerate(document["transitions"])
    )


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
    return _publish_document(status_model=status_model, document=document, user=user)


@transaction.atomic
def model_import(*, document: dict, user=None) -> tuple[ModelVersion, bool]:
    """Create or update a model from a document and publish it; returns (version, created)."""
    canonical = document_validate(document)
    status_model, _ = StatusModel.objects.get_or_create(
        key=canonical["id"], defaults={"name": canonical["name"], "initial_state": canonical["initial_state"]}
    )
    _write_draft(status_model=status_model, document=canonical)
    return _publish_document(status_model=status_model, document=canonical, user=user)


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


__all__ = ["DefinitionError", "draft_document", "dump_documents", "model_import", "model_publish", "parse_documents"]
