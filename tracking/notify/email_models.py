"""Customer email updates: which changes a model mails, who asked for them, and the changes waiting
to be told (docs/customer-email.md).

``CustomerEmailChange`` rows are this feature's outbox: the apply writes them in the transaction that
commits the change, only for instances with a confirmed subscription, so a mail tells of a change if
and only if it committed. A row is deleted once a mail has told of it. These models belong to the
``tracking`` app (``tracking/models.py`` imports them).
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class CustomerEmailSettings(models.Model):
    """Which changes of a model's instances mail the customers who asked for updates.

    A row per model that offers email; no row (or nothing ticked) means the customer page offers no
    email updates and the apply spends nothing on them.
    """

    model = models.OneToOneField(
        "models_registry.StatusModel", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    milestones = models.BooleanField("milestone reached", default=True, help_text="A new step on the customer's bar.")
    exceptions = models.BooleanField(
        "exception", default=True, help_text="The request enters an exception state (on hold…) or leaves it."
    )
    delays = models.BooleanField("delayed", default=True, help_text="A step takes longer than its expected_within.")
    outcomes = models.BooleanField("done", default=True, help_text="The request ends, in success or failure.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "customer email setting"
        verbose_name_plural = "customer email settings"

    def __str__(self) -> str:
        return f"{self.model}"

    def change_kinds(self) -> list[str]:
        """The notify change kinds (``ChangeKind``) these settings mail."""
        kinds = []
        if self.milestones:
            kinds.append("milestone")
        if self.exceptions:
            kinds += ["exception_entered", "exception_left"]
        if self.delays:
            kinds.append("delayed")
        if self.outcomes:
            kinds.append("outcome")
        return kinds


def new_subscription_key() -> str:
    return secrets.token_urlsafe(16)


class EmailSubscription(models.Model):
    """One address that asked for one instance's updates. It counts once ``confirmed_at`` is set
    (double opt-in); unsubscribing deletes the row, and with it the address."""

    instance = models.ForeignKey("tracking.ProcessInstance", on_delete=models.CASCADE, related_name="+")
    email = models.EmailField(max_length=254)
    # The language the page was read in when the customer subscribed: the mails are written in it.
    language = models.CharField(max_length=10)
    # What the confirmation and unsubscribe links carry (signed): random, never the row's id.
    key = models.CharField(max_length=32, default=new_subscription_key, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True, help_text="The last update mail, for the interval.")

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), "instance", name="unique_email_subscription_per_instance"),
        ]
        indexes = [
            # What the apply asks: the confirmed subscriptions of these instances.
            models.Index(
                fields=["instance"], name="email_subscription_confirmed", condition=Q(confirmed_at__isnull=False)
            ),
            # What the sweep asks: confirmations not sent yet, and stale unconfirmed rows.
            models.Index(fields=["created_at"], name="email_subscription_unconfirmed", condition=Q(confirmed_at=None)),
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk} of instance {self.instance_id}"


class CustomerEmailChange(models.Model):
    """A change waiting to be told to one subscription (the email outbox)."""

    subscription = models.ForeignKey(EmailSubscription, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=20)
    version_id = models.BigIntegerField()
    from_state = models.CharField(max_length=100, blank=True)
    to_state = models.CharField(max_length=100)
    milestone = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=10, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set while a worker sends the mail that tells of it; a claim older than a few minutes was lost.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "id"], name="customer_email_change_pending")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to_state}"
