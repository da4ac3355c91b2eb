"""What the repairs of events share: the events of one status, their instances locked, and the apply
tasks those instances need once the repair commits."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from tracking.apply.locks import instances_for_update
from tracking.inbox.dispatch import enqueue_instances
from tracking.models import InboxEvent


def events_locked(event_pks: Iterable[int], *, status: str) -> tuple[QuerySet[InboxEvent], set[int]]:
    """Those of these events in ``status``, read again once their instances are locked, so that no
    worker decides them meanwhile; and the instances' ids."""
    events = InboxEvent.objects.filter(pk__in=list(event_pks), status=status)
    instance_ids = set(events.values_list("instance_id", flat=True))
    list(instances_for_update(instance_ids))
    return events.filter(status=status), instance_ids


def enqueue_after_commit(events: QuerySet[InboxEvent]) -> None:
    """Apply tasks for these events' instances, sent once the transaction commits."""
    queues = dict(events.values_list("instance_id", "model__queue"))
    transaction.on_commit(lambda: enqueue_instances(queues))


def actor_reason(what: str, actor, note: str) -> str:
    """``what`` by whom, and why: the reason an operator's decision leaves on an event."""
    who = getattr(actor, "username", None) or "an operator"
    return (f"{what} by {who}" + (f": {note}" if note else ""))[:500]
