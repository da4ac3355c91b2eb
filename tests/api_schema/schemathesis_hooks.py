"""Schemathesis hooks for tests/api_schema/test_schema_conformance.py (loaded through SCHEMATHESIS_HOOKS).

Two rules of the events endpoint are beyond what the OpenAPI 3.0 schema can say, and its
descriptions say them instead; generated events are brought within them, so that a 400 for
breaking one is not taken for the schema lying:

- an event names its model, and only a published model's events are accepted: generated events
  name the model the test published, wherever their ``model_id`` (``modelid`` in the CloudEvents
  form) is a string;
- no text anywhere in an event (``data``, extension attributes, object keys) may hold a NUL
  character or a lone surrogate: the database cannot store them. The envelope's own fields say so
  with a ``pattern``, but OpenAPI 3.0 cannot constrain the keys of a free-form object, so such
  characters are dropped from generated events.

Schemathesis checks each case against the schema again after a hook changed it, so a case stays
"invalid" only for what is still wrong with it. Reads of one model or instance, and tries of an
event on a model, also use the ones the test made, not only names that do not exist, and a tried
event that names a model names the test's.
"""

from __future__ import annotations

import os
import re

import schemathesis
from hypothesis import strategies as st

MODEL = os.environ.get("SCHEMATHESIS_MODEL_ID", "order-fulfilment")
TRANSACTION = os.environ.get("SCHEMATHESIS_TRANSACTION_ID", "")


UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _storable(value):
    if isinstance(value, str):
        return UNSTORABLE_TEXT.sub("", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _with_known_model(event):
    if isinstance(event, dict):
        event = _storable(event)
        for field in ("model_id", "modelid"):
            if isinstance(event.get(field), str):
                event[field] = MODEL
    return event


def _with_known_models(body):
    if isinstance(body, dict) and set(body) == {"events"} and isinstance(body["events"], list):
        return {"events": [_with_known_model(event) for event in body["events"]]}
    if isinstance(body, list):
        return [_with_known_model(event) for event in body]
    return _with_known_model(body)


@schemathesis.hook
def map_case(context, case):
    # map_case, unlike map_body, applies in every phase (the coverage phase included).
    if case.operation.path == "/api/v1/events" and case.method.upper() == "POST":
        body = _with_known_models(case.body)
        if body != case.body:
            case.body = body
    if case.operation.path == "/api/v1/models/{model_id}/try" and isinstance(case.body, dict):
        event = case.body.get("event")
        if isinstance(event, dict) and _with_known_model(event) != event:
            case.body = {**case.body, "event": _with_known_model(event)}
    return case


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    path = context.operation.path if context.operation is not None else ""
    if path in ("/api/v1/models/{model_id}", "/api/v1/models/{model_id}/try", "/api/v1/models/{model_id}/event-log"):
        return st.sampled_from([path_parameters, {**path_parameters, "model_id": MODEL}])
    if path == "/api/v1/instances/{model_id}/{transaction_id}" and TRANSACTION:
        known = {"model_id": MODEL, "transaction_id": TRANSACTION}
        return st.sampled_from([path_parameters, known])
    return st.just(path_parameters)
