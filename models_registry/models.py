"""Status model definitions.

A ``StatusModel`` is the editable draft (its states and transitions are rows, so the admin can
edit them as inlines); publishing it validates the draft and freezes it into an immutable
``ModelVersion`` holding the canonical document. Instances are pinned to a version.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from models_registry.definition import DEFAULT_PARK_TTL, MODEL_ID_RE, STATE_KEY_RE, STATE_KINDS


class StatusModel(models.Model):
    key = models.CharField(
        "model id",
        max_length=64,
        unique=True,
        validators=[RegexValidator(MODEL_ID_RE, "Must match [a-z0-9][a-z0-9._-]{0,63}.")],
        help_text="The id carried on every event (model_id).",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    handler = models.CharField(max_length=64, default="declarative")
    initial_state = models.CharField(max_length=64)
    start_events = models.JSONField(default=list, blank=True, help_text="Event types that may create an instance.")
    park_ttl = models.CharField(max_length=32, default=DEFAULT_PARK_TTL, help_text="ISO 8601 duration, e.g. P7D.")
    milestones = models.JSONField(default=list, blank=True)
    display = models.JSONField(default=list, blank=True)
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


class StateDefinition(models.Model):
    model = models.ForeignKey(StatusModel, on_delete=models.CASCADE, related_name="states")
    position = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=64, validators=[RegexValidator(STATE_KEY_RE, "Must match [a-z0-9_]{1,64}.")])
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=[(k, k) for k in STATE_KINDS], default="step")
    expected_within = models.CharField(max_length=32, blank=True, help_text="ISO 8601 duration, e.g. P2D.")

    class Meta:
        ordering = ["model", "position", "id"]

    def __str__(self) -> str:
        return self.key


class TransitionDefinition(models.Model):
    model = models.ForeignKey(StatusModel, on_delete=models.CASCADE, related_name="transitions")
    position = models.PositiveIntegerField(default=0)
    event = models.CharField(max_length=200)
    from_states = models.CharField(
        "from", max_length=1000, help_text='Comma-separated state keys, or "*" for any non-terminal state.'
    )
    to_state = models.CharField("to", max_length=64)
    when = models.CharField(max_length=1000, blank=True, help_text="Optional JMESPath condition on the envelope.")
    set_fields = models.JSONField(
        "set", default=dict, blank=True, help_text='Context field -> JMESPath, e.g. {"carrier": "data.carrier"}.'
    )

    class Meta:
        ordering = ["model", "position", "id"]

    def __str__(self) -> str:
        return f"{self.event}: {self.from_states} -> {self.to_state}"


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
