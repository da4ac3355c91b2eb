"""Status model documents: every validation rule with its field path, the canonical form,
byte-identical export -> import -> export, and versions (instances stay pinned to theirs)."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given, settings
from hypothesis import strategies as st

from models_registry.definition import Definition, DefinitionError, canonical_order
from models_registry.models import ModelVersion, StatusModel
from models_registry.services import dump_documents, model_import, model_publish, parse_documents
from models_registry.validation import document_validate
from tests.conftest import EXAMPLES, edit_draft, state_of_draft
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import EventStatus, InboxEvent, ProcessInstance

EXAMPLE = yaml.safe_load((EXAMPLES / "order-fulfilment.yaml").read_text())


def changed(change) -> dict:
    document = copy.deepcopy(EXAMPLE)
    change(document)
    return document


def errors_of(document) -> dict[str, list[str]]:
    with pytest.raises(DefinitionError) as caught:
        document_validate(document)
    return caught.value.errors


def set_path(path: str, value):
    """A change that sets ``a.b[2].c`` in the document (``value`` DROP removes it)."""

    def change(document):
        *parents, last = _steps(path)
        target = document
        for step in parents:
            target = target[step]
        if value is DROP:
            del target[last]
        elif isinstance(target, list) and last == len(target):
            target.append(value)
        else:
            target[last] = value

    return change


def _steps(path: str) -> list:
    steps: list = []
    for part in path.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            steps.append(name)
        steps += [int(i) for i in indexes]
    return steps


DROP = object()
TERMINAL_SOURCE = {"event": "carrier.returned", "from": ["delivered"], "to": "cancelled"}
LOST_STATE = {"key": "lost", "label": "Lost in transit"}

# (change, field path, words of the message)
INVALID = [
    # the model id
    (set_path("id", DROP), "id", "Must match"),
    (set_path("id", "Order-Fulfilment"), "id", "Must match"),
    (set_path("id", "-orders"), "id", "Must match"),
    (set_path("id", "o" * 65), "id", "Must match"),
    (set_path("id", 7), "id", "Must match"),
    # texts
    (set_path("name", DROP), "name", "required"),
    (set_path("name", "n" * 201), "name", "At most 200"),
    (set_path("description", ["x"]), "description", "string"),
    # an unknown handler name
    (set_path("handler", "no_such_handler"), "handler", "Unknown handler 'no_such_handler'"),
    (set_path("handler", ["declarative"]), "handler", "Unknown handler"),
    # durations
    (set_path("park_ttl", "7 days"), "park_ttl", "ISO 8601"),
    (set_path("park_ttl", 7), "park_ttl", "ISO 8601"),
    (set_path("park_ttl", "P1M"), "park_ttl", "ISO 8601"),
    (set_path("states[1].expected_within", "2d"), "states[1].expected_within", "ISO 8601"),
    # start events
    (set_path("start_events", "order.placed"), "start_events", "list"),
    (set_path("start_events", ["order.placed", ""]), "start_events[1]", "non-empty string"),
    # states
    (set_path("states", []), "states", "At least one state"),
    (set_path("states", {"received": {}}), "states", "list"),
    (set_path("states[1]", "paid"), "states[1]", "object"),
    (set_path("states[1].key", "Paid"), "states[1].key", "Must match"),
    (set_path("states[1].key", "paid-now"), "states[1].key", "Must match"),
    (set_path("states[1].key", "p" * 65), "states[1].key", "Must match"),
    (set_path("states[2].key", "paid"), "states[2].key", "Duplicate state key 'paid'"),
    (set_path("states[1].kind", "final"), "states[1].kind", "Must be one of"),
    (set_path("states[1].label", DROP), "states[1].label", "required"),
    (set_path("states[1].label", ""), "states[1].label", "required"),
    # the initial state
    (set_path("initial_state", DROP), "initial_state", "required"),
    (set_path("initial_state", "nowhere"), "initial_state", "Unknown state key 'nowhere'"),
    (set_path("initial_state", "delivered"), "initial_state", "cannot be terminal"),
    # transitions: unknown state keys
    (set_path("transitions[0].from[1]", "nowhere"), "transitions[0].from[1]", "Unknown state key 'nowhere'"),
    (set_path("transitions[0].from[1]", ["on_hold"]), "transitions[0].from[1]", "Unknown state key"),
    (set_path("transitions[0].to", "nowhere"), "transitions[0].to", "Unknown state key 'nowhere'"),
    (set_path("transitions[0].to", ["paid"]), "transitions[0].to", "Unknown state key"),
    (set_path("transitions[0].to", DROP), "transitions[0].to", "Unknown state key"),
    # transitions: a terminal state with outgoing transitions
    (set_path("transitions[6]", TERMINAL_SOURCE), "transitions[6].from[0]", "'delivered' is terminal"),
    # transitions: shape
    (set_path("transitions", {"payment.captured": "paid"}), "transitions", "list"),
    (set_path("transitions[0]", "payment.captured"), "transitions[0]", "object"),
    (set_path("transitions[0].event", DROP), "transitions[0].event", "required"),
    (set_path("transitions[0].event", 5), "transitions[0].event", "string"),
    (set_path("transitions[0].from", []), "transitions[0].from", "non-empty list"),
    (set_path("transitions[0].from", "received"), "transitions[0].from", "non-empty list"),
    (set_path("transitions[0].from", DROP), "transitions[0].from", "non-empty list"),
    # JMESPath expressions that do not compile
    (set_path("transitions[5].when", "data.reason !="), "transitions[5].when", "does not compile"),
    (set_path("transitions[5].when", "data.[reason"), "transitions[5].when", "does not compile"),
    (set_path("transitions[5].when", ""), "transitions[5].when", "non-empty JMESPath"),
    (set_path("transitions[5].when", True), "transitions[5].when", "non-empty JMESPath"),
    (set_path("transitions[3].set.carrier", "data.carrier["), "transitions[3].set.carrier", "does not compile"),
    (set_path("transitions[3].set.carrier", 5), "transitions[3].set.carrier", "non-empty JMESPath"),
    (set_path("transitions[3].set", "data.carrier"), "transitions[3].set", "Must be a map"),
    (set_path("transitions[3].set", {}), "transitions[3].set", "Must be a map"),
    (set_path("transitions[3].set", {1: "data.carrier"}), "transitions[3].set", "non-empty strings"),
    # states unreachable from the initial state
    (set_path("states[7]", LOST_STATE), "states[7].key", "'lost' is unreachable from 'received'"),
    (set_path("transitions[1].from", ["on_hold"]), "states[5].key", "'on_hold' is unreachable"),
    # milestones
    (set_path("milestones", {"a": 1}), "milestones", "list"),
    (set_path("milestones", ["paid"]), "milestones[0]", "object"),
    (set_path("milestones", [{"key": "Bad", "label": "B", "states": ["paid"]}]), "milestones[0].key", "Must match"),
    (set_path("milestones", [{"key": "m", "states": ["paid"]}]), "milestones[0].label", "required"),
    (set_path("milestones", [{"key": "m", "label": "M", "states": []}]), "milestones[0].states", "at least one"),
    (set_path("milestones", [{"key": "m", "label": "M", "states": ["gone"]}]), "milestones[0].states[0]", "Unknown"),
    (set_path("milestones", [{"key": "m", "label": "M", "states": [{"k": 1}]}]), "milestones[0].states[0]", "Unknown"),
    (
        set_path(
            "milestones",
            [{"key": "m", "label": "M", "states": ["paid"]}, {"key": "m", "label": "N", "states": ["packed"]}],
        ),
        "milestones[1].key",
        "Duplicate milestone key 'm'",
    ),
    (
        set_path(
            "milestones",
            [{"key": "m", "label": "M", "states": ["paid"]}, {"key": "n", "label": "N", "states": ["paid"]}],
        ),
        "milestones[1].states[0]",
        "already in milestone 'm'",
    ),
    # display fields
    (set_path("display[0].label", DROP), "display[0].label", "required"),
    (set_path("display[0].field", ""), "display[0].field", "required"),
    (set_path("display[1].field", "carrier"), "display[1].field", "Duplicate display field 'carrier'"),
    (set_path("display", [{"field": "f" * 101, "label": "F"}]), "display[0].field", "At most 100"),
]


def test_the_example_model_is_valid():
    assert document_validate(EXAMPLE)["id"] == "order-fulfilment"


@pytest.mark.parametrize(("change", "path", "message"), INVALID)
def test_every_validation_rule_names_the_field(change, path, message):
    errors = errors_of(changed(change))

    assert path in errors, errors
    assert any(message.lower() in text.lower() for text in errors[path]), errors[path]


def test_a_document_that_is_not_an_object_is_refused():
    assert errors_of(["not", "a", "model"]) == {"": ["A status model must be an object."]}
    assert errors_of(None) == {"": ["A status model must be an object."]}


def test_all_errors_are_reported_at_once():
    document = changed(set_path("name", DROP))
    document["states"][1]["kind"] = "final"
    document["transitions"][5]["when"] = "data.reason !="
    document["handler"] = "nope"

    assert set(errors_of(document)) == {"name", "states[1].kind", "transitions[5].when", "handler"}


def test_error_message_lists_path_and_reason():
    with pytest.raises(DefinitionError) as caught:
        document_validate(changed(set_path("transitions[0].to", "nowhere")))

    assert "transitions[0].to: Unknown state key 'nowhere'." in str(caught.value)


# --- canonical form ------------------------------------------------------------------------------

MINIMAL = {
    "id": "minimal",
    "name": "Minimal",
    "initial_state": "open",
    "states": [{"key": "open", "label": "Open"}, {"key": "closed", "label": "Closed", "kind": "success"}],
    "transitions": [{"to": "closed", "event": "close", "from": ["open"]}],
}


def test_canonical_form_fills_defaults_and_orders_keys():
    canonical = document_validate({**MINIMAL, "description": None, "milestones": None})

    assert json.dumps(canonical) == json.dumps(
        {
            "id": "minimal",
            "name": "Minimal",
            "description": "",
            "handler": "declarative",
            "initial_state": "open",
            "start_events": [],
            "park_ttl": "P7D",
            "states": [
                {"key": "open", "label": "Open", "kind": "step"},
                {"key": "closed", "label": "Closed", "kind": "success"},
            ],
            "transitions": [{"event": "close", "from": ["open"], "to": "closed"}],
            "milestones": [],
            "display": [],
        }
    )


def test_canonical_form_keeps_optional_fields_only_when_set_and_is_a_fixed_point():
    canonical = document_validate(EXAMPLE)

    assert canonical["states"][0] == {
        "key": "received",
        "label": "Order received",
        "description": "We have your order and are checking it.",
        "kind": "step",
    }
    assert canonical["states"][1] == {"key": "paid", "label": "Payment confirmed", "kind": "step"}
    assert canonical["transitions"][0] == {"event": "payment.captured", "from": ["received", "on_hold"], "to": "paid"}
    assert list(canonical["transitions"][3]) == ["event", "from", "to", "set"]
    assert list(canonical["transitions"][5]) == ["event", "from", "to", "when"]
    assert json.dumps(document_validate(canonical)) == json.dumps(canonical)
    # The fields of a state come out in one order whatever order they were written in.
    shuffled = changed(lambda d: d["states"].__setitem__(0, dict(reversed(list(d["states"][0].items())))))
    assert json.dumps(document_validate(shuffled)) == json.dumps(canonical)


def test_set_fields_are_sorted_and_stored_documents_come_back_in_canonical_order():
    document = changed(lambda d: d["transitions"][3].__setitem__("set", {"z": "data.z", "a": "data.a"}))
    canonical = document_validate(document)
    assert list(canonical["transitions"][3]["set"]) == ["a", "z"]

    # As PostgreSQL's jsonb hands a document back: keys ordered by length
    def by_length(value):
        if isinstance(value, dict):
            return {key: by_length(value[key]) for key in sorted(value, key=lambda k: (len(k), k))}
        if isinstance(value, list):
            return [by_length(item) for item in value]
        return value

    scrambled = by_length(canonical)
    assert json.dumps(scrambled) != json.dumps(canonical)
    assert json.dumps(canonical_order(scrambled)) == json.dumps(canonical)
    assert json.dumps(Definition.from_document(scrambled).document) == json.dumps(canonical)
    assert dump_documents([scrambled], fmt="yaml") == dump_documents([canonical], fmt="yaml")


def test_unknown_top_level_fields_are_not_kept():
    canonical = document_validate({**MINIMAL, "colour": "blue"})

    assert "colour" not in canonical


# --- export -> import -> export --------------------------------------------------------------------

RICH = {
    "id": "claims.v2",
    "name": "Insurance claim: “Home” — ünïcode, quotes ' \" and # hashes",
    "description": "Line one.\nLine two: with a colon.\n  Indented line.\n",
    "handler": "declarative",
    "initial_state": "filed",
    "start_events": ["claim.filed", "on", "yes", "1.5"],
    "park_ttl": "PT90M",
    "states": [
        {"key": "filed", "label": "Filed", "description": "We have your claim.", "expected_within": "P2D"},
        {"key": "in_review", "label": "In review", "expected_within": "PT36H"},
        {"key": "assessor", "label": "With the assessor"},
        {"key": "needs_info", "label": "We need something from you", "kind": "exception"},
        {"key": "paid", "label": "Paid", "kind": "success"},
        {"key": "refused", "label": "Refused", "kind": "failure"},
    ],
    "transitions": [
        {"event": "claim.reviewed", "from": ["filed"], "to": "in_review"},
        {"event": "claim.assigned", "from": ["in_review"], "to": "assessor", "set": {"assessor": "data.name"}},
        {"event": "claim.query", "from": "*", "to": "needs_info", "when": "data.question != `null`"},
        {"event": "claim.answered", "from": ["needs_info"], "to": "in_review"},
        {
            "event": "claim.decided",
            "from": ["assessor"],
            "to": "paid",
            "when": "data.decision == 'accept' && to_number(data.amount) > `0`",
            "set": {"amount": "data.amount", "decided_at": "occurred_at", "note": 'data."free text"'},
        },
        {"event": "claim.decided", "from": ["assessor"], "to": "refused"},
    ],
    "milestones": [
        {"key": "filed", "label": "Filed", "states": ["filed"]},
        {"key": "review", "label": "In review", "description": "Two steps.", "states": ["in_review", "assessor"]},
        {"key": "decided", "label": "Decided", "states": ["paid", "refused"]},
    ],
    "display": [{"field": "amount", "label": "Amount"}, {"field": "assessor", "label": "Your assessor"}],
}


def export(*ids: str, fmt: str) -> str:
    out = StringIO()
    call_command("export_models", *ids, "--format", fmt, stdout=out)
    return out.getvalue()


def import_file(path) -> str:
    out = StringIO()
    call_command("import_models", str(path), stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_import_export_is_byte_identical(tmp_path, fmt):
    # Given both models imported from their source files
    source = tmp_path / "source.json"
    source.write_text(json.dumps([RICH]))
    assert import_file(EXAMPLES / "order-fulfilment.yaml") == "order-fulfilment: published version 1\n"
    assert import_file(source) == "claims.v2: published version 1\n"

    # When they are exported, imported again and exported again
    first = export(fmt=fmt)
    exported = tmp_path / f"models.{fmt}"
    exported.write_text(first)
    again = import_file(exported)
    second = export(fmt=fmt)

    # Then nothing changed: no new version, and the same bytes
    assert again == "claims.v2: unchanged, version 1\norder-fulfilment: unchanged, version 1\n"
    assert second == first
    # And the export is the canonical form of the source documents, in the canonical key order
    canonical = [document_validate(RICH), document_validate(EXAMPLE)]
    assert first == dump_documents(canonical, fmt=fmt)
    assert parse_documents(first, filename=f"x.{fmt}") == canonical
    assert [list(doc) for doc in parse_documents(first, filename=f"x.{fmt}")] == [list(doc) for doc in canonical]


@pytest.mark.django_db
def test_yaml_and_json_exports_hold_the_same_model(tmp_path):
    import_file(EXAMPLES / "order-fulfilment.yaml")
    as_json = tmp_path / "model.json"
    as_json.write_text(export("order-fulfilment", fmt="json"))

    StatusModel.objects.all().delete()
    import_file(as_json)

    assert export("order-fulfilment", fmt="yaml") == dump_documents([document_validate(EXAMPLE)], fmt="yaml")


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=150, deadline=None)
@given(name=text.filter(str.strip), label=text.filter(str.strip), description=text, event=text.filter(bool))
def test_yaml_and_json_round_trips_of_any_text_are_identical(name, label, description, event):
    document = {
        **MINIMAL,
        "name": name.strip(),
        "description": description,
        "states": [{"key": "open", "label": label.strip()}, MINIMAL["states"][1]],
        "start_events": [event],
        "transitions": [{"event": event, "from": ["open"], "to": "closed"}],
    }
    canonical = document_validate(document)
    for fmt in ("yaml", "json"):
        dumped = dump_documents([canonical], fmt=fmt)
        reloaded = document_validate(parse_documents(dumped, filename=f"m.{fmt}")[0])
        assert reloaded == canonical
        assert dump_documents([reloaded], fmt=fmt) == dumped


@pytest.mark.django_db
def test_an_invalid_document_is_not_imported_and_the_command_says_where(tmp_path):
    path = tmp_path / "models.yaml"
    bad = changed(set_path("transitions[0].to", "nowhere")) | {"id": "broken"}
    path.write_text(dump_documents([MINIMAL, bad], fmt="yaml"))
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_models", str(path), stdout=StringIO(), stderr=err)

    assert "document 2 is invalid" in err.getvalue()
    assert "transitions[0].to: Unknown state key 'nowhere'." in err.getvalue()
    assert not StatusModel.objects.filter(key="broken").exists()


# --- versions ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_editing_a_model_publishes_a_new_version_and_identical_imports_do_not():
    first, created = model_import(document=EXAMPLE)
    assert (first.number, created) == (1, True)

    same, created = model_import(document=copy.deepcopy(EXAMPLE))
    assert (same.pk, created) == (first.pk, False)

    edited = changed(lambda d: d["states"][1].__setitem__("label", "Paid"))
    second, created = model_import(document=edited)
    assert (second.number, created) == (2, True)

    # The previous version stays readable and unchanged
    first.refresh_from_db()
    assert first.document == document_validate(EXAMPLE)
    assert second.document["states"][1]["label"] == "Paid"
    assert list(ModelVersion.objects.filter(model__key="order-fulfilment").values_list("number", flat=True)) == [2, 1]

    # Publishing the draft unchanged (the admin's path) does not add a version either
    version, created = model_publish(status_model=StatusModel.objects.get(key="order-fulfilment"))
    assert (version.pk, created) == (second.pk, False)


@pytest.mark.django_db
def test_a_published_version_cannot_be_edited_through_the_draft():
    model_import(document=EXAMPLE)
    edit_draft("order-fulfilment", lambda d: state_of_draft(d, "paid").update(label="Paid in full"))
    status_model = StatusModel.objects.get(key="order-fulfilment")

    version, created = model_publish(status_model=status_model)

    assert (version.number, created) == (2, True)
    assert ModelVersion.objects.get(number=1).document["states"][1]["label"] == "Payment confirmed"


def _ingest(*events: dict) -> None:
    items = [
        RawEvent(json.dumps({"model_id": "order-fulfilment", "occurred_at": "2026-11-26T10:00:00Z", **e}).encode())
        for e in events
    ]
    assert {result.status for result in events_ingest(items=items, source_kind="file")} == {"accepted"}
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


@pytest.mark.django_db
def test_instances_stay_pinned_to_the_version_they_started_on():
    # Given an order started on version 1
    v1, _ = model_import(document=EXAMPLE)
    _ingest({"event_id": "a1", "transaction_id": "OLD", "event_type": "order.placed"})

    # When version 2 sends a captured payment to on_hold instead of paid, and adds a state
    def edit(document):
        document["states"].insert(1, {"key": "checked", "label": "Checked"})
        document["transitions"][0]["to"] = "on_hold"
        document["transitions"].append({"event": "payment.checked", "from": ["received"], "to": "checked"})
        document["transitions"].append({"event": "payment.captured", "from": ["checked"], "to": "paid"})

    v2, created = model_import(document=changed(edit))
    assert (v2.number, created) == (2, True)
    _ingest(
        {"event_id": "a2", "transaction_id": "OLD", "event_type": "payment.captured"},
        {"event_id": "b1", "transaction_id": "NEW", "event_type": "order.placed"},
        {"event_id": "b2", "transaction_id": "NEW", "event_type": "payment.captured"},
        {"event_id": "a3", "transaction_id": "OLD", "event_type": "payment.checked"},
    )

    # Then the old order follows version 1 and the new one version 2
    old = ProcessInstance.objects.get(transaction_id="OLD")
    new = ProcessInstance.objects.get(transaction_id="NEW")
    assert (old.version_id, old.state) == (v1.pk, "paid")
    assert (new.version_id, new.state) == (v2.pk, "on_hold")
    # version 1 knows no payment.checked: ignored for the old order
    assert InboxEvent.objects.get(event_id="a3").status == EventStatus.IGNORED
    assert list(old.history.values_list("to_state", flat=True)) == ["received", "paid"]
