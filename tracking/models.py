"""Instances, the event inbox, transition history and dead letters."""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, TransitionNotAllowed, transition

from models_registry.handlers import move_is_declared
from models_registry.models import ModelVersion, StatusModel
from models_registry.selectors import version_definition, version_model_id


class InstanceStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for a start event"
    ACTIVE = "active", "Active"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    IN_EXCEPTION = "in_exception", "In exception"


STATUS_BY_KIND = {
    "step": InstanceStatus.ACTIVE,
    "exception": InstanceStatus.IN_EXCEPTION,
    "success": InstanceStatus.SUCCEEDED,
    "failure": InstanceStatus.FAILED,
}


def new_link_nonce() -> str:
    """The random, per-instance part of the customer's tracking link (see tracking/progress/links.py)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class _Move:
    """A move proposed to a transition; its conditions judge it (see ProcessInstance.start)."""

    target: str
    event_type: str = ""
    handler: str = ""
    version_id: int | None = None
    event: Mapping | None = None


def _same_model(instance: "ProcessInstance", version_id: int | None) -> bool:
    return version_id is not None and version_model_id(version_id=version_id) == instance.model_id


def _creates_in_initial_state(instance: "ProcessInstance") -> bool:
    move = instance._proposed
    if not _same_model(instance, move.version_id):
        return False
    definition = version_definition(version_id=move.version_id)
    return move.target == definition.initial_state and definition.may_start(move.event_type)


def _event_move_is_declared(instance: "ProcessInstance") -> bool:
    move, source = instance._proposed, instance.state
    if instance.version_id is None:
        return False
    return move_is_declared(
        definition=version_definition(version_id=instance.version_id),
        handler=move.handler,
        source=source,
        target=move.target,
        event=move.event,
    )


def _started(instance: "ProcessInstance") -> bool:
    return bool(instance.state) and instance.version_id is not None


def _target_in_pinned_version(instance: "ProcessInstance") -> bool:
    return instance._proposed.target in version_definition(version_id=instance.version_id).kinds


def _target_in_new_version(instance: "ProcessInstance") -> bool:
    move = instance._proposed
    return (
        _same_model(instance, move.version_id) and move.target in version_definition(version_id=move.version_id).kinds
    )


class ProcessInstance(FSMModelMixin, models.Model):
    """One service request: the instance of a model for one transaction id.

    The row is reserved when the first event of the transaction arrives, so that workers always
    have a row to lock; until an event starts it, its state is empty and its status ``waiting``,
    and it is not shown anywhere a customer or API reader looks.
    """

    model = models.ForeignKey(StatusModel, on_delete=models.PROTECT, related_name="instances", db_index=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    transaction_id = models.CharField(max_length=200)
    state = FSMField(default="", max_length=64, protected=True)
    status = models.CharField(max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.WAITING)
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    state_entered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # Customer links carry this value, signed; replacing it revokes every link issued so far.
    link_nonce = models.CharField(max_length=32, default=new_link_nonce, editable=False)

    class Meta:
        constraints = [
            # The constraint's index also serves look-ups by model alone, so the foreign key has none.
            models.UniqueConstraint(fields=["model", "transaction_id"], name="unique_instance_per_transaction"),
            # A constraint rather than unique=True: on PostgreSQL the latter adds a second,
            # LIKE-pattern index that every instance update would have to maintain.
            models.UniqueConstraint(fields=["link_nonce"], name="unique_instance_link_nonce"),
        ]
        indexes = [
            models.Index(fields=["model", "state"], name="instance_model_state"),
            # The customer page's completion estimate reads the latest completions of a version.
            models.Index(
                fields=["version", "state_entered_at"],
                name="instance_succeeded_recent",
                condition=Q(status="succeeded"),
            ),
            # The delay check: open instances of a version in a state since before a time.
            models.Index(
                fields=["version", "state", "state_entered_at"],
                name="instance_open_since",
                condition=Q(status__in=["active", "in_exception"]),
            ),
        ]

    def __str__(self) -> str:
        # The model's id as producers send it, not its primary key ("order-fulfilment · SIM-123").
        return f"{self.model.key} · {self.transaction_id}"

    # --- State changes -----------------------------------------------------------------------
    # Every change of ``state`` is one of four django-fsm transitions, each with conditions that
    # check the move against the model version the instance is pinned to. django-fsm gives a
    # condition only the instance, so the public method stages the move it proposes
    # (``_proposed``) and then runs the transition. ``bulk_write_check`` lets the applier's bulk
    # write refuse any instance whose state did not come out of one of them.

    def start(self, *, version_id: int, initial_state: str, event_type: str) -> None:
        """Creation by an event: pinned to ``version_id``, in that version's initial state."""
        self._through(self._start, _Move(initial_state, event_type=event_type, version_id=version_id))

    def apply_event(self, *, target: str, event: Mapping, handler: str) -> None:
        """An event's move, as the version's transitions for that event's type declare it."""
        self._through(self._apply_event, _Move(target, event_type=event["event_type"], handler=handler, event=event))

    def move_manually(self, *, target: str) -> None:
        """An operator's move: any state of the pinned version (a declared exception to the table)."""
        self._through(self._move_manually, _Move(target))

    def migrate(self, *, version_id: int, target: str) -> None:
        """A version migration: re-pinned to ``version_id``, in one of its states."""
        self._through(self._migrate, _Move(target, version_id=version_id))

    def bulk_write_check(self) -> None:
        """Raise unless the state and version held now are those the last transition produced."""
        if self.__dict__.get("_state_from_transition") != (self.state, self.version_id):
            raise TransitionNotAllowed(
                f"{self}: state {self.state!r} of version {self.version_id} was not set by a transition",
                object=self,
                method=None,
            )

    def _through(self, transition_method, move: "_Move") -> None:
        self._proposed = move
        try:
            transition_method()
        finally:
            self._proposed = None
        self._state_from_transition = (self.state, self.version_id)

    @transition(field=state, source="", target=RETURN_VALUE(), conditions=[_creates_in_initial_state])
    def _start(self) -> str:
        self.version_id = self._proposed.version_id
        return self._proposed.target

    @transition(field=state, source="*", target=RETURN_VALUE(), conditions=[_event_move_is_declared])
    def _apply_event(self) -> str:
        return self._proposed.target

    @transition(field=state, source="*", target=RETURN_VALUE(), conditions=[_started, _target_in_pinned_version])
    def _move_manually(self) -> str:
        return self._proposed.target

    @transition(field=state, source="*", target=RETURN_VALUE(), conditions=[_started, _target_in_new_version])
    def _migrate(self) -> str:
        self.version_id = self._proposed.version_id
        return self._proposed.target


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    PARKED = "parked", "Parked"
    IGNORED = "ignored", "Ignored"
    EXPIRED = "expired", "Expired"
    # Applying it failed on every try: its instance is held until an operator retries or skips it.
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped by an operator"


class SourceKind(models.TextChoices):
    API = "api", "REST API"
    FILE = "file", "File"
    KINESIS = "kinesis", "Kinesis"


class InboxEvent(models.Model):
    """An accepted event, stored once; its primary key is its arrival order."""

    event_id = models.CharField(max_length=128)
    model = models.ForeignKey(StatusModel, on_delete=models.PROTECT, related_name="+", db_index=False)
    instance = models.ForeignKey(ProcessInstance, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    envelope = models.JSONField()
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    duplicate_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # Idempotency is this constraint. (Not unique=True, which on PostgreSQL adds a second,
            # LIKE-pattern index that every status update of the row would maintain.)
            models.UniqueConstraint(fields=["event_id"], name="unique_inbox_event_id"),
        ]
        indexes = [
            models.Index(
                fields=["instance", "id"],
                name="inbox_open_by_instance",
                condition=Q(status__in=["pending", "parked", "failed"]),
            ),
            models.Index(fields=["received_at"], name="inbox_pending_by_age", condition=Q(status="pending")),
            models.Index(fields=["received_at"], name="inbox_parked_by_age", condition=Q(status="parked")),
            # Failed events hold their instance; the index has no rows while nothing fails.
            models.Index(fields=["instance"], name="inbox_failed_by_instance", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return self.event_id


class ApplyFailure(models.Model):
    """An instance whose events could not be applied: how often it was tried, and the last error.

    Written only when applying fails (never on the way of an event that applies), so the
    bounded retries survive lost tasks and the sweep; deleted when the instance applies again
    or when its offending event is marked failed.
    """

    instance = models.OneToOneField(ProcessInstance, on_delete=models.CASCADE, related_name="apply_failure")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField()
    last_failed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.instance}: {self.attempts} failed attempts"


class TransitionRecord(models.Model):
    """History: one row per applied transition (creation included), append-only."""

    instance = models.ForeignKey(ProcessInstance, on_delete=models.CASCADE, related_name="history")
    event = models.ForeignKey(InboxEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_state = models.CharField(max_length=64, blank=True)
    to_state = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(help_text="When the source system saw the event.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    note = models.CharField(max_length=500, blank=True)
    context_updates = models.JSONField(
        default=dict, blank=True, help_text="What this transition stored in the instance's context."
    )

    class Meta:
        ordering = ["instance", "id"]
        indexes = [
            # Only manual moves have an actor: the rows the workers write stay out of the index.
            models.Index(fields=["actor"], name="history_by_actor", condition=Q(actor__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.instance}: {self.from_state or '-'} -> {self.to_state}"


class ReplayOutcome(models.TextChoices):
    """What ingestion made of a replayed dead letter (the outcomes of ``events_ingest``)."""

    ACCEPTED = "accepted", "Accepted into the inbox"
    DUPLICATE = "duplicate", "Duplicate of an event already in the inbox"
    CONFLICT = "conflict", "Conflict: its id was stored with another body"
    REJECTED = "rejected", "Rejected again"


class DeadLetter(models.Model):
    """Input that was rejected: its raw bytes, where it came from, and why; then what an operator
    did with it. An open dead letter is neither replayed nor discarded (docs/operators.md).

    A replay sends the letter (or an operator's edit of it, kept in ``replayed_raw``) through
    ``events_ingest`` again; a replay that ingestion refuses once more leaves a new dead letter, whose
    ``replay_of`` names this one, so that every try keeps its body and its reason.
    """

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=500, blank=True)
    raw = models.BinaryField()
    field = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=1000)
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rejected_replays",
        help_text="The dead letter whose replay was rejected again as this one.",
    )

    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replayed_raw = models.BinaryField(
        null=True, blank=True, help_text="The body replayed, when an operator edited it (otherwise ``raw``)."
    )
    replay_outcome = models.CharField(max_length=16, choices=ReplayOutcome.choices, blank=True)
    replay_event_id = models.CharField(
        max_length=128, blank=True, help_text="The inbox event it became (accepted) or already was (duplicate)."
    )
    replay_detail = models.CharField(
        max_length=1000, blank=True, help_text="Why ingestion refused it again, or its warning when accepted."
    )

    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        permissions = [
            ("replay_deadletter", "Can replay dead letters (as received or edited)"),
            ("discard_deadletter", "Can discard dead letters"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(replayed_at__isnull=True) | Q(discarded_at__isnull=True),
                name="deadletter_replayed_or_discarded",
            ),
            models.CheckConstraint(
                condition=Q(replayed_at__isnull=True) | ~Q(replay_outcome=""), name="deadletter_replay_has_outcome"
            ),
            models.CheckConstraint(
                condition=Q(discarded_at__isnull=True) | ~Q(discard_reason=""), name="deadletter_discard_has_reason"
            ),
        ]
        indexes = [
            # The operator's work list: open dead letters, newest first.
            models.Index(
                fields=["received_at"],
                name="deadletter_open_by_age",
                condition=Q(replayed_at__isnull=True, discarded_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Dead letter #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.replayed_at is None and self.discarded_at is None


class ShardLease(models.Model):
    """Who reads one Kinesis shard, and how far it has been read: the consumer's shared state.

    Workers change a lease only with conditional updates on ``lease_counter`` (take, renew, hand
    over, release), so two workers can never both believe they hold it; the checkpoint is written
    in the same transaction as the events it covers and only while the writer still holds the
    lease. Expiry is compared with the database clock, so workers on several machines need no
    synchronised clocks.
    """

    stream = models.CharField(max_length=128)
    shard_id = models.CharField(max_length=128)
    parent_shard_ids = models.JSONField(default=list, blank=True)
    owner = models.CharField(max_length=255, blank=True, db_index=True)
    # A worker below its fair share asks the owner to hand the lease over after its current batch,
    # so that a shard never has two readers at once.
    pending_owner = models.CharField(max_length=255, blank=True)
    lease_counter = models.BigIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    checkpoint_sequence = models.CharField(max_length=128, blank=True)
    checkpoint_sub_sequence = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False, help_text="Read to its end (a closed parent shard).")
    records_processed = models.BigIntegerField(default=0)
    millis_behind_latest = models.BigIntegerField(null=True, blank=True)
    records_per_second = models.FloatField(default=0.0)
    last_checkpoint_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "shard_id"], name="unique_lease_per_shard")]
        ordering = ["stream", "shard_id"]

    def __str__(self) -> str:
        return f"{self.stream}/{self.shard_id}"


# Subscriptions and the notification outbox live with the code that writes and delivers them.
from tracking.notify.email_models import CustomerEmailChange, CustomerEmailSettings, EmailSubscription  # noqa: E402, F401
from tracking.notify.models import (  # noqa: E402, F401
    ChangeKind,
    DelayNotice,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    WebhookSubscription,
)
