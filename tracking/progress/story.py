"""An instance's whole story, for operators: every event of its transaction with what became of it,
and the transitions they caused — with who and why for manual ones, and the context as it changed.

Read in three queries (counts, events, history with who) for the instance's admin page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracking.models import EventStatus, InboxEvent, ProcessInstance, TransitionRecord
from tracking.progress.selectors import instance_definition, instance_event_counts

# The newest events of a transaction shown; a story longer than this says how many are left out.
STORY_LIMIT = 500

OUTCOME_WORDS = {
    EventStatus.PENDING: "waiting for a worker",
    EventStatus.APPLIED: "applied",
    EventStatus.PARKED: "parked: waits until the instance can take it",
    EventStatus.IGNORED: "ignored",
    EventStatus.EXPIRED: "expired: parked for longer than the model allows",
    EventStatus.FAILED: "failed: holds the instance until it is retried or skipped",
    EventStatus.SKIPPED: "skipped by an operator",
}


@dataclass(frozen=True)
class StoryTransition:
    from_state: str  # "" for the creation
    to_state: str
    from_label: str
    to_label: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str  # who moved it by hand; "" for a move an event caused
    note: str
    context_updates: dict


@dataclass(frozen=True)
class StoryEvent:
    event_id: str
    event_type: str
    status: str
    outcome: str  # the status in words
    reason: str
    occurred_at: datetime
    received_at: datetime
    processed_at: datetime | None
    source: str
    duplicates: int
    expires_at: datetime | None  # parked: when it expires unless the instance gets where it applies
    transitions: list[StoryTransition] = field(default_factory=list)


@dataclass
class Story:
    entries: list[StoryEvent | StoryTransition]  # in arrival order; manual moves where they happened
    counts: dict[str, int]  # events by status
    duplicates: int  # copies received again and dropped
    left_out: int  # older events not shown
    path: list[tuple[str, str]]  # the transitions taken, in order, (from, to); creation has from ""


def instance_story(*, instance: ProcessInstance) -> Story:
    definition = instance_definition(version_id=instance.version_id, model_key=instance.model.key)
    labels = {s["key"]: s["label"] for s in definition.document["states"]} if definition else {}
    park_ttl: timedelta | None = definition.park_ttl if definition else None

    events = InboxEvent.objects.filter(instance=instance)
    every_count, duplicates = instance_event_counts(instance=instance)
    counts = {status: count for status, count in every_count.items() if count}
    rows = list(
        events.order_by("-id").only(
            "id",
            "event_id",
            "event_type",
            "status",
            "reason",
            "occurred_at",
            "received_at",
            "processed_at",
            "source_kind",
            "source_ref",
            "duplicate_count",
        )[:STORY_LIMIT]  # fmt: skip
    )
    rows.reverse()
    history = list(TransitionRecord.objects.filter(instance=instance).select_related("actor").order_by("id"))

    def transition(record: TransitionRecord) -> StoryTransition:
        return StoryTransition(
            from_state=record.from_state,
            to_state=record.to_state,
            from_label=labels.get(record.from_state, record.from_state),
            to_label=labels.get(record.to_state, record.to_state),
            occurred_at=record.occurred_at,
            recorded_at=record.recorded_at,
            actor=record.actor.get_username() if record.actor else "",
            note=record.note,
            context_updates=record.context_updates or {},
        )

    caused: dict[int, list[StoryTransition]] = {}
    manual: list[StoryTransition] = []
    for record in history:
        if record.event_id is None:
            manual.append(transition(record))
        else:
            caused.setdefault(record.event_id, []).append(transition(record))

    entries: list[StoryEvent | StoryTransition] = []
    for row in rows:
        # A manual move goes before the first event that arrived after it.
        while manual and manual[0].recorded_at < row.received_at:
            entries.append(manual.pop(0))
        parked = row.status == EventStatus.PARKED
        entries.append(
            StoryEvent(
                event_id=row.event_id,
                event_type=row.event_type,
                status=row.status,
                outcome=OUTCOME_WORDS.get(row.status, row.status),
                reason=row.reason,
                occurred_at=row.occurred_at,
                received_at=row.received_at,
                processed_at=row.processed_at,
                source=f"{row.get_source_kind_display()} {row.source_ref}".strip(),
                duplicates=row.duplicate_count,
                expires_at=row.received_at + park_ttl if parked and park_ttl else None,
                transitions=caused.get(row.pk, []),
            )
        )
    entries.extend(manual)

    return Story(
        entries=entries,
        counts=counts,
        duplicates=duplicates,
        left_out=max(0, sum(counts.values()) - len(rows)),
        path=[(record.from_state, record.to_state) for record in history],
    )
