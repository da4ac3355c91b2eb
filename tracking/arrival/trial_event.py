"""The event to try (``tracking.apply.trial``): an envelope as the inbox would store it, with the
fields that mean nothing to a model's decisions filled in, so that a business trying a model need
not type them."""

from __future__ import annotations

from django.utils import timezone

from tracking.arrival.envelope import CLOUDEVENTS_FIELDS, EnvelopeError, parse

# Fields of an envelope that mean nothing to a model's decisions, so that a business trying a model
# need not type them: the model comes from the URL; the ids are fixed, so that the same request gets
# the same answer (an expression that reads them sees these values).
EVENT_DEFAULTS = {"model_id": None, "event_id": "try-event", "transaction_id": "try-transaction"}
CLOUDEVENTS_NAMES = {native: name for name, native in CLOUDEVENTS_FIELDS.items()}


def trial_envelope(model_id: str, event: dict, errors: dict[str, list[str]]) -> dict | None:
    """The event as the inbox would store it, defaults filled in; None (and ``errors``) when invalid."""
    names = CLOUDEVENTS_NAMES if "specversion" in event else {name: name for name in EVENT_DEFAULTS}
    filled = dict(event)
    for native, default in EVENT_DEFAULTS.items():
        if filled.get(names[native]) is None:
            filled[names[native]] = default or model_id
    try:
        envelope = parse(filled)
    except EnvelopeError as exc:
        errors[f"event.{exc.field}" if exc.field else "event"] = [exc.reason]
        return None
    if envelope.model_id != model_id:
        errors[f"event.{envelope.model_field}"] = [f"must be {model_id!r}, the model of the URL, or left out"]
        return None
    return envelope.as_document(received_at=timezone.now())
