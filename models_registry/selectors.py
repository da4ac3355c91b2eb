"""Reads of status model definitions, for ingestion, workers and the API."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from django.db.models import JSONField, Max, OuterRef, Subquery

from models_registry.definition import Definition, milestone_groups
from models_registry.models import ModelVersion, StatusModel
from models_registry.services import draft_document
from models_registry.validation import document_validate


def current_versions(*, keys: Iterable[str]) -> dict[str, ModelVersion]:
    """The latest published version of each of the given model ids that has one."""
    latest = ModelVersion.objects.filter(model=OuterRef("model")).order_by("-number").values("number")[:1]
    versions = (
        ModelVersion.objects.filter(model__key__in=set(keys), number=Subquery(latest))
        .select_related("model")
        .only("id", "number", "model__id", "model__key", "model__queue", "document")
    )
    return {version.model.key: version for version in versions}


@lru_cache(maxsize=512)
def _compiled(version_id: int) -> Definition:
    return Definition.from_document(ModelVersion.objects.values_list("document", flat=True).get(pk=version_id))


def version_definition(*, version_id: int) -> Definition:
    """The compiled definition of a version; versions are immutable, so it is cached per process."""
    return _compiled(version_id)


@lru_cache(maxsize=512)
def _model_of(version_id: int) -> int:
    return ModelVersion.objects.values_list("model_id", flat=True).get(pk=version_id)


def version_model_id(*, version_id: int) -> int:
    """The primary key of the model a version belongs to (cached per process, as definitions are)."""
    return _model_of(version_id)


def draft_definition(*, key: str) -> Definition | None:
    """The compiled definition of a model's draft, as publishing it would make it; None when there is
    no such model. Raises ``DefinitionError`` (every problem, by field path) when it cannot be published."""
    status_model = StatusModel.objects.filter(key=key).first()
    if status_model is None:
        return None
    return Definition.from_document(document_validate(draft_document(status_model=status_model)))


@lru_cache(maxsize=512)
def _milestones(version_id: int) -> dict[str, dict]:
    return {
        state: {"key": group["key"], "label": group["label"]}
        for group in milestone_groups(_compiled(version_id).document)
        for state in group["states"]
    }


def version_milestone_of_states(*, version_id: int) -> dict[str, dict]:
    """The milestone (key and label) each state of a version belongs to, cached per process."""
    return _milestones(version_id)


def clear_definition_cache() -> None:
    """Forget compiled definitions (tests reuse primary keys across rolled-back transactions)."""
    _compiled.cache_clear()
    _model_of.cache_clear()
    _milestones.cache_clear()


def model_list():
    # Ordered explicitly: an aggregate query does not apply Meta.ordering, and exports and pages
    # must list models in the same order every time.
    # Readers see what is published: name, description and handler come from the latest version.
    latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-number")
    return (
        StatusModel.objects.annotate(
            latest_version=Max("versions__number"),
            latest_document=Subquery(latest.values("document")[:1], output_field=JSONField()),
        )
        .filter(latest_version__isnull=False)
        .order_by("key")
    )


def model_version(*, key: str, number: int | None = None) -> ModelVersion | None:
    versions = ModelVersion.objects.filter(model__key=key).select_related("model")
    if number is not None:
        return versions.filter(number=number).first()
    return versions.order_by("-number").first()


def model_version_numbers(*, key: str) -> list[int]:
    """The published version numbers of a model, oldest first."""
    return list(ModelVersion.objects.filter(model__key=key).order_by("number").values_list("number", flat=True))
