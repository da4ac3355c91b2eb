"""Status model definitions.

A ``StatusModel`` holds the editable draft, a status model document that may still have errors;
publishing it validates the draft and freezes it into an immutable ``ModelVersion`` holding the
canonical document. Instances are pinned to a version.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from models_registry.definition import MODEL_ID_RE


class StatusModel(models.Model):
    """A model id and its draft: the document the designer edits, kept as it is (errors and all)
    until it is published. Only the model id and the queue live outside the document."""

    key = models.CharField(
        "model id",
        max_length=64,
        unique=True,
        validators=[RegexValidator(MODEL_ID_RE, "Must match [a-z0-9][a-z0-9._-]{0,63}.")],
        help_text="The id carried on every event (model_id).",
    )
    draft = models.JSONField(default=dict, blank=True, help_text="The status model document being edited.")
    queue = models.CharField(
        max_length=100,
        blank=True,
        help_text="Celery queue for this model's work; empty: the default queue. Workers must consume it (-Q).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        permissions = [("edit_definitions", "Can import and publish status model definitions (API)")]

    def __str__(self) -> str:
        return self.key

    @property
    def name(self) -> str:
        name = self.draft.get("name") if isinstance(self.draft, dict) else None
        return name if isinstance(name, str) and name else self.key


class ModelVersion(models.Model):
    """A published, immutable version of a status model."""

    model = models.ForeignKey(StatusModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="unique_model_version_number")]

    def __str__(self) -> str:
        return f"{self.model.key} v{self.number}"
