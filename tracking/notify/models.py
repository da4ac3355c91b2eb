"""Subscriptions and the notification outbox.

A ``Notification`` row is written by the apply, in the transaction that commits the change it
tells of, once per matching subscription: it exists if and only if its change committed. Workers
deliver the rows; ``DeliveryAttempt`` keeps each try. These models belong to the ``tracking`` app
(``tracking/models.py`` imports them).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from models_registry.selectors import version_definition, version_milestone_of_states


class ChangeKind(models.TextChoices):
    TRANSITION = "transition", "Transition"
    MILESTONE = "milestone", "Milestone reached"
    OUTCOME = "outcome", "Outcome (success or failure)"
    EXCEPTION_ENTERED = "exception_entered", "Exception entered"
    EXCEPTION_LEFT = "exception_left", "Exception left"
    DELAYED = "delayed", "Delayed (past expected within)"


def new_webhook_secret() -> str:
    """A signing secret as the Standard Webhooks libraries expect it: ``whsec_`` and base64."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookSubscription(models.Model):
    """A business's endpoint for one model's changes, with filters."""

    model = models.ForeignKey("models_registry.StatusModel", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    kinds = models.JSONField(default=list, blank=True, help_text="Kinds of change sent; empty: every kind.")
    states = models.JSONField(default=list, blank=True, help_text="Only changes into these states; empty: any.")
    milestones = models.JSONField(
        default=list, blank=True, help_text="Only changes that reach these milestones; empty: any."
    )
    context_fields = models.JSONField(default=list, blank=True, help_text="Context fields put in the payload.")
    secret = models.CharField(max_length=100, default=new_webhook_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "id"]
        permissions = [("manage_webhooks", "Can manage webhook subscriptions (API)")]

    def __str__(self) -> str:
        return f"{self.model} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    DELIVERED = "delivered", "Delivered"
    GAVE_UP = "gave_up", "Given up after every retry"


class Notification(models.Model):
    """The outbox: one change told to one subscription, kept as columns (cheap for the apply to
    write); the body is made when it is sent (``payload``). Its ``webhook_id`` is what receivers
    deduplicate on."""

    # No database constraints on these two: the apply writes a row per subscribed transition, and
    # checking both keys on every insert cost it a tenth of its time (bench/RESULTS.md). The rows
    # are written with keys the apply has just read, and deleting either side deletes them (ORM).
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="notifications", db_constraint=False
    )
    instance = models.ForeignKey(
        "tracking.ProcessInstance", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    kind = models.CharField(max_length=20, choices=ChangeKind.choices)
    version_id = models.BigIntegerField(help_text="The version whose states the change names.")
    transaction_id = models.CharField(max_length=200)
    from_state = models.CharField(max_length=64, blank=True)
    to_state = models.CharField(max_length=64)
    event_id = models.CharField(max_length=128, blank=True, help_text="The event that caused it, if one did.")
    occurred_at = models.CharField(max_length=40, blank=True, help_text="When that event happened, as it said.")
    context = models.JSONField(default=dict, blank=True, help_text="The context fields the subscription chose.")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # What is left to send, per endpoint and instance in order; empty while everything is
            # sent, so the sweep reads all of it too.
            models.Index(
                fields=["subscription", "instance", "id"], name="notification_pending", condition=Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return self.webhook_id

    @property
    def webhook_id(self) -> str:
        """Stable for the notification, the same on every try: ``msg_`` and its number."""
        return f"msg_{self.pk}"

    @property
    def payload(self) -> dict:
        """The body receivers get, in the Standard Webhooks shape: type, timestamp, data."""
        milestone = version_milestone_of_states(version_id=self.version_id).get(self.to_state)
        kind = version_definition(version_id=self.version_id).kinds.get(self.to_state)
        return {
            "type": f"instance.{self.kind}",
            "timestamp": self.created_at.isoformat(),
            "data": {
                "model_id": self.subscription.model.key,
                "transaction_id": self.transaction_id,
                "kind": self.kind,
                "from_state": self.from_state or None,
                "to_state": self.to_state,
                "milestone": milestone,
                "outcome": kind if self.kind == ChangeKind.OUTCOME else None,
                "event_id": self.event_id or None,
                "occurred_at": self.occurred_at or None,
                "context": self.context,
            },
        }


class DeliveryAttempt(models.Model):
    """One try at sending a notification: the delivery log."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True)
    error = models.CharField(max_length=500, blank=True)
    manual = models.BooleanField(default=False, help_text="Sent again by an operator.")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.notification}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DelayNotice(models.Model):
    """An instance found past its state's ``expected_within``: told once per stay in a state."""

    instance = models.ForeignKey("tracking.ProcessInstance", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=64)
    state_entered_at = models.DateTimeField()
    noticed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "state_entered_at"], name="unique_delay_notice_per_stay")
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} delayed in {self.state}"
