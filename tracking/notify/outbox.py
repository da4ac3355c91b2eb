"""The outbox: the apply writes a notification row for every subscribed change, in its own
transaction, so that a notification exists if and only if its change committed; after the commit it
asks the workers to deliver them (the sweep sends what a lost task left behind).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from celery import current_app
from django.db import transaction

from tracking.bulk import bulk_insert
from tracking.notify.changes import Change, step_changes
from tracking.notify.emails import email_outbox_write
from tracking.notify.models import Notification, WebhookSubscription

logger = logging.getLogger(__name__)
DELIVER_TASK = "tracking.tasks.deliver_notifications"  # tracking.notify.tasks.deliver_notifications


@dataclass(frozen=True)
class AppliedSteps:
    """One instance's transitions in one apply, as ``ApplyBatch`` took them."""

    instance: object  # ProcessInstance, after the apply
    version_id: int
    context_before: Mapping
    steps: Sequence  # engine.Step
    events: Mapping[int, object]  # inbox row id -> InboxEvent, for the steps' events


def subscription_matches(subscription: WebhookSubscription, change: Change) -> bool:
    if subscription.kinds and change.kind not in subscription.kinds:
        return False
    if subscription.states and change.to_state not in subscription.states:
        return False
    if subscription.milestones and (change.milestone or {}).get("key") not in subscription.milestones:
        return False
    return True


@dataclass(frozen=True)
class InstanceChange:
    """One change of one instance, with what a payload tells of it."""

    instance: object  # ProcessInstance
    change: Change
    context: Mapping  # the instance's context right after the change
    event: Mapping  # the envelope of the event that caused it ({} when none did)


def _row(subscription: WebhookSubscription, instance, change: Change, envelope: Mapping, context: Mapping) -> dict:
    """The outbox row of one change for one subscription: columns, the body is made when sent."""
    return {
        "subscription_id": subscription.pk,
        "instance_id": instance.pk,
        "kind": change.kind,
        "version_id": instance.version_id,
        "transaction_id": instance.transaction_id,
        "from_state": change.from_state,
        "to_state": change.to_state,
        "event_id": envelope.get("event_id") or "",
        "occurred_at": envelope.get("occurred_at") or "",
        "context": {name: context[name] for name in subscription.context_fields if name in context}
        if subscription.context_fields
        else {},
    }


def outbox_write(applied: Sequence[AppliedSteps], *, now: datetime) -> None:
    """Write the notification rows for these applied steps; deliver them once the apply commits.

    Nothing is worked out for a model that nobody subscribed to: one query per apply batch.
    """
    if not applied:
        return
    email_outbox_write(applied, now=now)
    subscribed = _subscriptions({a.instance.model_id for a in applied})
    if not subscribed:
        return
    # The apply's hot path: rows straight from the steps, the context's chosen fields taken as
    # each step leaves it (no copy of the whole context per step).
    rows = []
    for entry in applied:
        subscriptions = subscribed.get(entry.instance.model_id)
        if not subscriptions:
            continue
        instance = entry.instance
        context = dict(entry.context_before) if any(s.context_fields for s in subscriptions) else {}
        for step in entry.steps:
            if step.context_updates:
                context.update(step.context_updates)
            event = entry.events.get(step.event_key)
            envelope = event.envelope if event is not None else {}
            for change in step_changes(version_id=entry.version_id, from_state=step.from_state, to_state=step.to_state):
                for subscription in subscriptions:
                    if subscription_matches(subscription, change):
                        rows.append(_row(subscription, instance, change, envelope, context))
    if rows:
        notifications_write(rows)


def _subscriptions(model_ids) -> dict[int, list[WebhookSubscription]]:
    subscriptions: dict[int, list[WebhookSubscription]] = defaultdict(list)
    for subscription in WebhookSubscription.objects.filter(model_id__in=model_ids, is_active=True).select_related(
        "model"
    ):
        subscriptions[subscription.model_id].append(subscription)
    return subscriptions


def changes_write(
    items: Sequence[InstanceChange], subscribed: Mapping[int, list[WebhookSubscription]] | None = None, *, now
) -> None:
    """A notification row for each change and each active subscription it matches (in the caller's
    transaction); the apply and the delay check both write through here."""
    if subscribed is None:
        subscribed = _subscriptions({item.instance.model_id for item in items})
    rows = [
        _row(subscription, item.instance, item.change, item.event, item.context)
        for item in items
        for subscription in subscribed.get(item.instance.model_id, ())
        if subscription_matches(subscription, item.change)
    ]
    if rows:
        notifications_write(rows)


def notifications_write(rows: list[dict]) -> None:
    """Insert notification rows (in the caller's transaction) and deliver them after it commits."""
    bulk_insert(Notification, rows)
    pairs = sorted({(row["subscription_id"], row["instance_id"]) for row in rows})
    transaction.on_commit(lambda: _send_later(pairs))


def _send_later(pairs: list[tuple[int, int]]) -> None:
    # By name: the tasks' module reads this one (the delay check writes through changes_write).
    try:
        current_app.send_task(DELIVER_TASK, args=[pairs])
    except Exception:  # the broker is away: the sweep delivers them (tracking.notify.delivery)
        logger.warning("could not queue %d deliveries; the sweep will send them", len(pairs))
