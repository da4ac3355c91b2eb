"""What the service holds for a model, in the shape ``tests.reference_replay.replay`` returns."""

from __future__ import annotations

from collections import defaultdict

from tracking.models import EventStatus, InboxEvent, ProcessInstance, TransitionRecord


def observed(model_key: str) -> dict[str, dict]:
    """Per transaction: state (None before an event starts it), context, each stored event's
    outcome, the history as (from | None, to, event id) in order, and duplicate counts."""
    events = defaultdict(list)
    for event in InboxEvent.objects.filter(model__key=model_key).order_by("pk"):
        events[event.instance_id].append(event)
    history = defaultdict(list)
    for record in TransitionRecord.objects.filter(instance__model__key=model_key).select_related("event"):
        history[record.instance_id].append((record.pk, record.from_state or None, record.to_state, record.event))
    result = {}
    for instance in ProcessInstance.objects.filter(model__key=model_key):
        result[instance.transaction_id] = {
            "state": instance.state or None,
            "context": instance.context,
            "outcomes": {event.event_id: event.status for event in events[instance.pk]},
            "history": [
                (from_state, to_state, event.event_id if event else None)
                for _, from_state, to_state, event in sorted(history[instance.pk], key=lambda row: row[0])
            ],
            "duplicates": {
                event.event_id: event.duplicate_count for event in events[instance.pk] if event.duplicate_count
            },
        }
    return result


def expected(reference: dict[str, dict]) -> dict[str, dict]:
    """The replay's result as the service stores it: rejected events are dead letters, not
    outcomes, and a transaction that only had rejected events has no instance row."""
    result = {}
    for transaction_id, entry in reference.items():
        outcomes = {event_id: status for event_id, status in entry["outcomes"].items() if status != "rejected"}
        if outcomes:
            result[transaction_id] = {**entry, "outcomes": outcomes}
    return result


def nothing_pending(model_key: str | None = None) -> bool:
    events = InboxEvent.objects.filter(status=EventStatus.PENDING)
    if model_key is not None:
        events = events.filter(model__key=model_key)
    return not events.exists()
