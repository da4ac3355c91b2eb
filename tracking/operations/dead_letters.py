"""An operator's answer to a dead letter: replay it through ingestion (as received or edited), or
discard it with a reason; and the reads the admin and the API share to find and show them.

A replay is checked first with ingestion's own checks (``tracking.arrival.envelope`` and the model's
existence): a letter that is still invalid is not sent and stays open, and the answer says why. A
letter that passes goes through ``events_ingest`` like any producer's event, so every rule and the
dedupe apply, and is closed with what ingestion answered: accepted (with the inbox event id), a
duplicate, or refused again (a conflict), in which case ingestion's new dead letter names it in
``replay_of`` (docs/decisions.md, "Dead letters").
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from models_registry.selectors import current_versions
from tracking.arrival.envelope import Envelope, EnvelopeError, decode, parse
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import DeadLetter, ReplayOutcome, SourceKind

# Outcomes of a replay besides ingestion's own (ReplayOutcome): nothing was sent.
INVALID = "invalid"  # still invalid: kept open, with the problems found
NOT_OPEN = "not_open"  # replayed or discarded before

# At most this many letters go to ingestion in one transaction (the file importer's batch).
REPLAY_BATCH = 500
# The raw bytes a page shows (the API's detail has them all).
RAW_PREVIEW_BYTES = 20_000

OPEN, REPLAYED, DISCARDED = "open", "replayed", "discarded"
STATUS_CHOICES = [(OPEN, "Open"), (REPLAYED, "Replayed"), (DISCARDED, "Discarded")]
_STATUS_FILTERS = {
    OPEN: Q(replayed_at__isnull=True, discarded_at__isnull=True),
    REPLAYED: Q(replayed_at__isnull=False),
    DISCARDED: Q(discarded_at__isnull=False),
}

# Kinds of reason, by the words ingestion writes (tracking/arrival/envelope.py, ingest.py). A letter
# with several problems is of every kind it names.
_REASON_KINDS: dict[str, tuple[str, Q]] = {
    "unknown_model": ("Unknown model", Q(reason__icontains="unknown model")),
    "required": ("A required field missing", Q(reason__icontains="required")),
    "format": ("A field of the wrong type or form", Q(reason__icontains="must be")),
    "not_json": (
        "Not JSON, not UTF-8 or not an object",
        Q(reason__icontains="not JSON")
        | Q(reason__icontains="not UTF-8")
        | Q(reason__icontains="must be a JSON object"),
    ),  # fmt: skip
    "too_large": (
        "Too large or nested too deep",
        Q(reason__icontains="larger than") | Q(reason__icontains="nested deeper"),
    ),  # fmt: skip
    "conflict": ("Event id reused with another body", Q(reason__startswith="conflict:")),
}
REASON_CHOICES = [(key, label) for key, (label, _) in _REASON_KINDS.items()] + [("other", "Anything else")]

_REPLAY_REF = re.compile(r" \(replay of dead letter #\d+\)$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- Reads -------------------------------------------------------------------------------------


def dead_letters_with_reason(queryset: QuerySet[DeadLetter], reason: str) -> QuerySet[DeadLetter]:
    """The letters of one kind of reason (REASON_CHOICES); "other" is every letter of none of them."""
    if reason == "other":
        for _, condition in _REASON_KINDS.values():
            queryset = queryset.exclude(condition)
        return queryset
    return queryset.filter(_REASON_KINDS[reason][1])


def dead_letters_with_status(queryset: QuerySet[DeadLetter], status: str) -> QuerySet[DeadLetter]:
    return queryset.filter(_STATUS_FILTERS[status])


def dead_letter_status(letter: DeadLetter) -> str:
    if letter.replayed_at is not None:
        return REPLAYED
    return DISCARDED if letter.discarded_at is not None else OPEN


def dead_letter_list(
    *,
    status: str | None = None,
    reason: str | None = None,
    source_kind: str | None = None,
    field: str | None = None,
    received_since: datetime | None = None,
    received_before: datetime | None = None,
) -> QuerySet[DeadLetter]:
    """Dead letters, newest first, filtered as the API's list is."""
    letters = DeadLetter.objects.select_related("replayed_by", "discarded_by").order_by("-received_at", "-pk")
    if status:
        letters = dead_letters_with_status(letters, status)
    if reason:
        letters = dead_letters_with_reason(letters, reason)
    if source_kind:
        letters = letters.filter(source_kind=source_kind)
    if field is not None:
        letters = letters.filter(field=field)
    if received_since:
        letters = letters.filter(received_at__gte=received_since)
    if received_before:
        letters = letters.filter(received_at__lt=received_before)
    return letters


@dataclass(frozen=True)
class RawPreview:
    """Raw bytes as a page can show them: ``text`` when they are UTF-8 without control characters,
    otherwise ``hex_dump`` (offset, bytes, printable ASCII); at most ``RAW_PREVIEW_BYTES`` of them."""

    size: int
    text: str | None
    hex_dump: str | None
    truncated: bool


def raw_text(raw: bytes) -> str | None:
    """The bytes as text, when they are UTF-8 and hold no control characters but tabs and newlines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL_CHARACTERS.search(text) else text


def raw_preview(raw: bytes, *, limit: int = RAW_PREVIEW_BYTES) -> RawPreview:
    text = raw_text(raw)
    if text is not None:
        return RawPreview(size=len(raw), text=text[:limit], hex_dump=None, truncated=len(text) > limit)
    shown = raw[:limit]
    lines = []
    for offset in range(0, len(shown), 16):
        chunk = shown[offset : offset + 16]
        printable = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {printable}")
    return RawPreview(size=len(raw), text=None, hex_dump="\n".join(lines), truncated=len(raw) > limit)


def editable_body(raw: bytes) -> str:
    """The text an operator starts editing from: the event as indented JSON when it is JSON, else the
    text (undecodable bytes replaced by U+FFFD)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# --- Checking a body as ingestion would ---------------------------------------------------------


def dead_letter_body_problems(*, letter: DeadLetter, body: bytes) -> list[tuple[str, str]]:
    """Every problem ingestion would find with this body, replayed for this letter, before storing it,
    as (field, reason) pairs; none when it would be stored (as a new event, a duplicate, or a
    conflict: only the inbox says)."""
    envelope, problems = _checked(body, _default_event_id(letter))
    if envelope is not None:
        return _unknown_models([envelope]).get(0, [])
    return problems


def edited_body(text: str) -> bytes:
    """An operator's edit as ingestion receives it: compact JSON when it is JSON (its size is then
    what a producer would send), else the text as typed, which the check refuses in its words."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.encode("utf-8", errors="replace")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, kept escaped for ingestion to name its field
        return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _checked(body: bytes, default_event_id: str | None) -> tuple[Envelope | None, list[tuple[str, str]]]:
    try:
        return parse(decode(body), default_event_id=default_event_id, size=len(body)), []
    except EnvelopeError as error:
        return None, list(error.errors)


def _unknown_models(envelopes: Sequence[Envelope]) -> dict[int, list[tuple[str, str]]]:
    known = current_versions(keys={envelope.model_id for envelope in envelopes})
    return {
        index: [(envelope.model_field, f"unknown model {envelope.model_id!r}")]
        for index, envelope in enumerate(envelopes)
        if envelope.model_id not in known
    }


# --- Writes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """What became of one replayed letter: one of ReplayOutcome, INVALID or NOT_OPEN.

    ``problems`` are why it is still invalid or was refused again; ``new_dead_letter_id`` is the
    letter ingestion wrote when it refused it again.
    """

    dead_letter_id: int
    outcome: str
    event_id: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    warning: str = ""
    new_dead_letter_id: int | None = None

    @property
    def sent(self) -> bool:
        return self.outcome not in (INVALID, NOT_OPEN)


def dead_letters_replay(
    *, dead_letter_ids: Iterable[int], actor, bodies: dict[int, bytes] | None = None
) -> list[ReplayResult]:
    """Replay dead letters through ingestion, as received or with the body given for them in
    ``bodies``; one result per letter found, in id order. Each batch is one transaction: the
    letters closed and the events stored commit together."""
    ids = sorted(set(dead_letter_ids))
    results: list[ReplayResult] = []
    for start in range(0, len(ids), REPLAY_BATCH):
        results.extend(_replay_batch(ids[start : start + REPLAY_BATCH], actor=actor, bodies=bodies or {}))
    return results


def dead_letter_replay(*, dead_letter_id: int, actor, body: bytes | None = None) -> ReplayResult:
    bodies = {dead_letter_id: body} if body is not None else None
    (result,) = dead_letters_replay(dead_letter_ids=[dead_letter_id], actor=actor, bodies=bodies)
    return result


@dataclass
class _Sending:
    letter: DeadLetter
    body: bytes
    edited: bool
    envelope: Envelope
    ref: str
    default_event_id: str | None


def _first_ref(letter: DeadLetter) -> str:
    """Where the letter's input first came from, without the marks earlier replays added."""
    ref = letter.source_ref
    while _REPLAY_REF.search(ref):
        ref = _REPLAY_REF.sub("", ref)
    return ref


def _default_event_id(letter: DeadLetter) -> str | None:
    # A Kinesis record without an event id takes its reference as one: so does its replay.
    return _first_ref(letter) if letter.source_kind == SourceKind.KINESIS else None


def _replay_ref(letter: DeadLetter) -> str:
    # Kept within the 500 characters ingestion stores, so that the letter it may write is found by it.
    mark = f" (replay of dead letter #{letter.pk})"
    return _first_ref(letter)[: 500 - len(mark)] + mark


@transaction.atomic
def _replay_batch(ids: list[int], *, actor, bodies: dict[int, bytes]) -> list[ReplayResult]:
    # Locked in primary-key order (the only place dead letters are locked): a letter is replayed or
    # discarded once, whoever else acts on it at the same moment.
    letters = list(DeadLetter.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    results: dict[int, ReplayResult] = {}
    sending: list[_Sending] = []
    for letter in letters:
        if not letter.is_open:
            results[letter.pk] = ReplayResult(letter.pk, NOT_OPEN)
            continue
        edited = letter.pk in bodies and bodies[letter.pk] != bytes(letter.raw)
        body = bodies[letter.pk] if edited else bytes(letter.raw)
        default_event_id = _default_event_id(letter)
        envelope, problems = _checked(body, default_event_id)
        if envelope is None:
            results[letter.pk] = ReplayResult(letter.pk, INVALID, problems=problems)
            continue
        sending.append(_Sending(letter, body, edited, envelope, _replay_ref(letter), default_event_id))
    unknown = _unknown_models([s.envelope for s in sending])
    for index in sorted(unknown, reverse=True):
        letter = sending.pop(index).letter
        results[letter.pk] = ReplayResult(letter.pk, INVALID, problems=unknown[index])
    results.update(_ingest(sending, actor=actor))
    return [results[letter.pk] for letter in letters]


def _ingest(sending: list[_Sending], *, actor) -> dict[int, ReplayResult]:
    by_kind: dict[str, list[_Sending]] = defaultdict(list)
    for item in sending:
        by_kind[item.letter.source_kind].append(item)
    now = timezone.now()
    results: dict[int, ReplayResult] = {}
    refused: dict[str, DeadLetter] = {}
    for source_kind, items in by_kind.items():
        raw_events = [
            RawEvent(item.body, source_ref=item.ref, default_event_id=item.default_event_id) for item in items
        ]
        for item, ingested in zip(items, events_ingest(items=raw_events, source_kind=source_kind), strict=True):
            letter = item.letter
            problems = list(ingested.errors) if ingested.status == ReplayOutcome.REJECTED else []
            if ingested.status == ReplayOutcome.CONFLICT:
                problems = [(ingested.field, ingested.reason)]
            letter.replayed_at, letter.replayed_by = now, actor
            letter.replayed_raw = item.body if item.edited else None
            letter.replay_outcome = ingested.status
            letter.replay_event_id = (ingested.event_id or "")[:128]
            letter.replay_detail = ("; ".join(_words(f, r) for f, r in problems) or ingested.warning)[:1000]
            if problems:
                refused[item.ref] = letter
            results[letter.pk] = ReplayResult(
                letter.pk, ingested.status, event_id=ingested.event_id, problems=problems, warning=ingested.warning
            )
    DeadLetter.objects.bulk_update(
        [item.letter for item in sending],
        ["replayed_at", "replayed_by", "replayed_raw", "replay_outcome", "replay_event_id", "replay_detail"],
    )
    # The letters ingestion wrote for the replays it refused: each names the letter it came from.
    for new in DeadLetter.objects.filter(source_ref__in=list(refused), replay_of__isnull=True).exclude(
        pk__in=[letter.pk for letter in refused.values()]
    ):
        original = refused[new.source_ref]
        DeadLetter.objects.filter(pk=new.pk).update(replay_of=original)
        results[original.pk] = replace(results[original.pk], new_dead_letter_id=new.pk)
    return results


def _words(field_name: str, reason: str) -> str:
    return f"{field_name}: {reason}" if field_name else reason


@transaction.atomic
def dead_letters_discard(*, dead_letter_ids: Iterable[int], actor, reason: str) -> int:
    """Set open dead letters aside, with who did it and why; returns how many. Letters replayed or
    discarded before are left as they are."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required to discard dead letters")
    ids = list(
        DeadLetter.objects.select_for_update()
        .filter(pk__in=list(dead_letter_ids), replayed_at__isnull=True, discarded_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return DeadLetter.objects.filter(pk__in=ids, replayed_at__isnull=True, discarded_at__isnull=True).update(
        discarded_at=timezone.now(), discarded_by=actor, discard_reason=reason[:500]
    )
