"""Reads of instances for the REST API and the customer page.

Instances still waiting for a start event are reserved rows, not yet service requests anyone
can see: every selector here leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet, Sum
from django.db.models.fields.json import KT

from models_registry.definition import Definition
from models_registry.selectors import current_versions, version_definition
from tracking.models import EventStatus, InboxEvent, InstanceStatus, ProcessInstance, TransitionRecord
from tracking.notify.email_models import EmailSubscription
from tracking.progress.customer_page import CustomerPage, HistoryRow, MilestoneStats, build_page, completion_stats
from tracking.progress.milestones import BranchPlan, instance_milestones


@dataclass(frozen=True)
class InstanceDetail:
    """Everything a reader sees of one instance, gathered in a fixed number of queries."""

    instance: ProcessInstance
    definition: Definition
    history: list[TransitionRecord]
    milestones: list[dict]
    event_counts: dict[str, int]
    duplicates: int
    failed_events: list[InboxEvent]

    @property
    def parked_events(self) -> int:
        return self.event_counts[EventStatus.PARKED]

    def state_label(self, key: str) -> str:
        return state_labels(self.definition).get(key, key)


INSTANCE_FIELDS = (
    "id",
    "model",
    "version",
    "transaction_id",
    "state",
    "status",
    "created_at",
    "started_at",
    "state_entered_at",
    "updated_at",
)


def state_labels(definition: Definition) -> dict[str, str]:
    return {state["key"]: state["label"] for state in definition.document["states"]}


def started_instances() -> QuerySet[ProcessInstance]:
    return ProcessInstance.objects.exclude(status=InstanceStatus.WAITING).filter(version__isnull=False)


def version_state_counts(*, version_id: int) -> dict[str, int]:
    """How many started instances of a version are in each state now (for its diagram)."""
    rows = started_instances().filter(version_id=version_id).values_list("state").annotate(count=Count("id"))
    return dict(rows.order_by())


def instance_get(*, model_key: str, transaction_id: str) -> ProcessInstance | None:
    """The started instance of (model, transaction), or None."""
    return (
        started_instances()
        .select_related("model", "version")
        .only(*INSTANCE_FIELDS, "context", "link_nonce", "model__key", "version__number")
        .filter(model__key=model_key, transaction_id=transaction_id)
        .first()
    )


def instance_history(*, instance: ProcessInstance) -> list[TransitionRecord]:
    """The instance's transitions, oldest first, with the event and the user behind each."""
    return list(
        TransitionRecord.objects.filter(instance=instance)
        .select_related("event", "actor")
        .only(
            "id",
            "from_state",
            "to_state",
            "occurred_at",
            "recorded_at",
            "note",
            "event__event_id",
            "event__event_type",
            "actor__username",
        )
        .order_by("id")
    )


def instance_event_counts(*, instance: ProcessInstance) -> tuple[dict[str, int], int]:
    """How many of the instance's events have each outcome (every outcome named, 0 included), and how
    many copies of them were received again (duplicates), in one query."""
    rows = (
        InboxEvent.objects.filter(instance=instance)
        .values_list("status")
        .annotate(count=Count("id"), duplicates=Sum("duplicate_count"))
        .order_by()
    )
    counts = dict.fromkeys(EventStatus.values, 0)
    duplicates = 0
    for status, count, copies in rows:
        counts[status] = count
        duplicates += copies or 0
    return counts, duplicates


def instance_failed_events(*, instance: ProcessInstance) -> list[InboxEvent]:
    """Events that failed on every try and hold the instance until an operator acts."""
    return list(
        InboxEvent.objects.filter(instance=instance, status=EventStatus.FAILED)
        .only("id", "event_id", "event_type", "reason", "processed_at")
        .order_by("id")
    )


def instance_detail(*, model_key: str, transaction_id: str) -> InstanceDetail | None:
    """One instance with its definition, history, milestones and parked events; None if not started."""
    instance = instance_get(model_key=model_key, transaction_id=transaction_id)
    if instance is None:
        return None
    definition = version_definition(version_id=instance.version_id)
    history = instance_history(instance=instance)
    counts, duplicates = instance_event_counts(instance=instance)
    return InstanceDetail(
        instance=instance,
        definition=definition,
        history=history,
        milestones=instance_milestones(instance, definition, history),
        event_counts=counts,
        duplicates=duplicates,
        failed_events=instance_failed_events(instance=instance),
    )


@dataclass(frozen=True)
class TransactionEvents:
    """The events of one transaction, whether or not they have started its instance yet."""

    events: QuerySet[InboxEvent]
    # How long a parked event waits: the park_ttl of the version its instance is pinned to or, for a
    # transaction not started yet, of the model's latest version (docs/decisions.md).
    park_ttl: timedelta | None


def transaction_events(*, model_key: str, transaction_id: str) -> TransactionEvents | None:
    """Every event of (model, transaction) in arrival order, with their outcomes; None when it has none.

    Unlike the instance reads above, this one includes the reserved row of a transaction that no event
    has started yet: its parked events are exactly what a reader wants to see then.
    """
    instance = (
        ProcessInstance.objects.filter(model__key=model_key, transaction_id=transaction_id)
        .only("id", "version_id")
        .first()
    )
    if instance is None:
        return None
    events = (
        InboxEvent.objects.filter(instance=instance)
        .annotate(sent_source=KT("envelope__source"))
        .only(
            "id",
            "event_id",
            "event_type",
            "status",
            "reason",
            "occurred_at",
            "received_at",
            "processed_at",
            "duplicate_count",
            "source_kind",
        )
        .order_by("id")
    )
    if not events.exists():
        return None
    definition = instance_definition(version_id=instance.version_id, model_key=model_key)
    return TransactionEvents(events=events, park_ttl=definition.park_ttl if definition else None)


def instance_definition(*, version_id: int | None, model_key: str) -> Definition | None:
    """The definition an instance's events are judged by: its version's or, before it has started,
    the model's latest version's (None when the model has no version)."""
    if version_id is not None:
        return version_definition(version_id=version_id)
    latest = current_versions(keys=[model_key]).get(model_key)
    return version_definition(version_id=latest.id) if latest else None


def instance_list(
    *,
    model_key: str | None = None,
    state: str | None = None,
    status: str | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[ProcessInstance]:
    """Started instances, oldest change first (so that ``updated_since`` polling pages forward)."""
    instances = (
        started_instances().select_related("model", "version").only(*INSTANCE_FIELDS, "model__key", "version__number")
    )
    if model_key:
        instances = instances.filter(model__key=model_key)
    if state:
        instances = instances.filter(state=state)
    if status:
        instances = instances.filter(status=status)
    if updated_since is not None:
        instances = instances.filter(updated_at__gte=updated_since)
    return instances.order_by("updated_at", "id")


def instance_state_label(*, instance: ProcessInstance) -> str:
    """The customer-facing label of the instance's state, from its pinned version."""
    return state_labels(version_definition(version_id=instance.version_id)).get(instance.state, instance.state)


# --- Customer page (tracking/progress/views.py): a fixed number of queries whatever the history ----------


def instance_for_customer(*, nonce: str) -> ProcessInstance | None:
    """The started instance whose tracking links carry this nonce, or None (one query)."""
    return (
        started_instances()
        .only(
            "id", "model_id", "version_id", "state", "status", "context", "state_entered_at", "updated_at", "link_nonce"
        )
        .filter(link_nonce=nonce)
        .first()
    )


def version_completion_stats(*, version_id: int) -> dict[str, MilestoneStats]:
    """Time from each milestone to completion over the version's latest completed instances.

    One query over at most ``STATUSTRACKER_ETA_SAMPLE_SIZE`` instances (their index keeps it
    independent of how much history there is), cached per version for
    ``STATUSTRACKER_ETA_CACHE_SECONDS``: page views read the cache.
    """
    key = f"tracking:completion-stats:{version_id}"
    stats = cache.get(key)
    if stats is None:
        recent = (
            ProcessInstance.objects.filter(version_id=version_id, status=InstanceStatus.SUCCEEDED)
            .order_by("-state_entered_at")
            .values("id")[: settings.STATUSTRACKER_ETA_SAMPLE_SIZE]
        )
        rows = (
            TransitionRecord.objects.filter(instance_id__in=recent)
            .order_by("instance_id", "id")
            .values_list("instance_id", "to_state", "occurred_at")
        )
        stats = completion_stats(version_definition(version_id=version_id).document, rows.iterator())
        cache.set(key, stats, settings.STATUSTRACKER_ETA_CACHE_SECONDS)
    return stats


# version id -> (the Definition it was made from, its BranchPlan). Checked against the definition
# cache by identity, so that a cleared cache (tests reuse primary keys) never serves a stale plan.
_branch_plans: dict[int, tuple[Definition, BranchPlan]] = {}
BRANCH_PLANS_KEPT = 512


def version_branch_plan(*, version_id: int) -> BranchPlan:
    """Where a version's paths branch, for the customer page: made once per version and process."""
    definition = version_definition(version_id=version_id)
    cached = _branch_plans.get(version_id)
    if cached is None or cached[0] is not definition:
        if len(_branch_plans) >= BRANCH_PLANS_KEPT:
            _branch_plans.clear()
        cached = (definition, BranchPlan.from_document(definition.document))
        _branch_plans[version_id] = cached
    return cached[1]


def instance_customer_page(*, instance: ProcessInstance, now: datetime) -> CustomerPage:
    """What the customer page shows: the history is one query; definition and statistics are cached."""
    definition = version_definition(version_id=instance.version_id)
    history = [
        HistoryRow(to_state, occurred_at)
        for to_state, occurred_at in TransitionRecord.objects.filter(instance_id=instance.pk)
        .order_by("id")
        .values_list("to_state", "occurred_at")
    ]
    stats = version_completion_stats(version_id=instance.version_id) if instance.status == InstanceStatus.ACTIVE else {}
    return build_page(
        document=definition.document,
        state=instance.state,
        context=instance.context,
        history=history,
        updated_at=instance.updated_at,
        state_entered_at=instance.state_entered_at,
        stats=stats,
        minimum_completed=settings.STATUSTRACKER_ETA_MIN_COMPLETED,
        now=now,
        plan=version_branch_plan(version_id=instance.version_id),
    )


def instance_email_subscriptions(*, instance_id: int) -> list[dict]:
    """The addresses subscribed to an instance's updates, for staff (the API's instance detail)."""
    return [
        {
            "email": subscription.email,
            "language": subscription.language,
            "confirmed": subscription.confirmed_at is not None,
            "created_at": subscription.created_at,
            "last_sent_at": subscription.last_sent_at,
        }
        for subscription in EmailSubscription.objects.filter(instance_id=instance_id).order_by("id")
    ]
