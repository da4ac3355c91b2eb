"""The designer's reading of a draft: its problems in words, placed on the row and field that is
wrong, its diagram and what publishing it would change.

The rules are ``validation.document_validate``'s (the same for the admin, the API and
``import_models``); this module only says them the way a business user reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from django.template.loader import render_to_string

from models_registry.diagram import model_diagram
from models_registry.diff import documents_diff
from models_registry.handlers import handler_catalogue
from models_registry.services import draft_errors
from models_registry.validation import document_validate

_PATH = re.compile(r"^(?P<section>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<field>[a-z_]+)(?:\[\d+\]|\.(?P<name>.+))?)?$")

SECTIONS = {
    "states": ("State", "key"),
    "transitions": ("Transition", "event"),
    "milestones": ("Milestone", "key"),
    "display": ("Display field", "field"),
    "start_events": ("Start event", None),
}
FIELD_WORDS = {
    "id": "Model id",
    "name": "Name",
    "description": "Description",
    "handler": "Handler",
    "initial_state": "Initial state",
    "start_events": "Start events",
    "park_ttl": "How long early events wait",
    "states": "States",
    "transitions": "Transitions",
    "milestones": "Milestones",
    "display": "Display fields",
}
MESSAGES = [
    (re.compile(r"^Unknown state key None\.$"), "Choose a state."),
    (re.compile(r"^Unknown state key (?P<key>.+)\.$"), r"\g<key> is not a state of this model."),
    (re.compile(r"^Must match \[a-z0-9_\]\{1,64\}\.$"), "Use 1 to 64 lowercase letters, digits or underscores."),
    (
        re.compile(r"^Must match \[a-z0-9\]\[a-z0-9._-\]\{0,63\}\.$"),
        "Use up to 64 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit.",
    ),
    (
        re.compile(r"^Must be a non-empty list of state keys or \"\*\"\.$"),
        'Choose at least one state, or "any open state".',
    ),
]


@dataclass(frozen=True)
class Problem:
    path: str  # the field it belongs to, as the designer's inputs name it: "transitions[1].to"
    row: str  # the row it belongs to ("transitions[1]"), "" for the model's own fields
    text: str  # in words: "Transition 2 (payment.captured): 'aproved' is not a state of this model."


def _reworded(message: str) -> str:
    for pattern, replacement in MESSAGES:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def _row_title(document: Mapping, section: str, index: int) -> str:
    noun, name_field = SECTIONS[section]
    entries = document.get(section)
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    name = entry.get(name_field) if isinstance(entry, Mapping) and name_field else None
    return f"{noun} {index + 1} ({name})" if isinstance(name, str) and name else f"{noun} {index + 1}"


def problem_count(errors: Mapping[str, list[str]]) -> int:
    """How many problems the designer shows for these errors: one per message."""
    return sum(len(messages) for messages in errors.values())


def describe_problems(document: Mapping, errors: Mapping[str, list[str]]) -> list[Problem]:
    """The validator's errors (field path -> messages) as problems placed on rows and fields."""
    problems = []
    for path, messages in errors.items():
        match = _PATH.match(path)
        if match is None or match["section"] not in FIELD_WORDS:
            problems += [Problem("", "", _reworded(m)) for m in messages]
            continue
        section, index, field = match["section"], match["index"], match["field"]
        if index is None or section not in SECTIONS:
            words = FIELD_WORDS[section]
            problems += [Problem(section, "", f"{words}: {_reworded(m)}") for m in messages]
            continue
        row = f"{section}[{index}]"
        title = _row_title(document, section, int(index))
        if field == "set" and match["name"]:
            title += f", context field {match['name']!r}"
        problems += [Problem(f"{row}.{field}" if field else row, row, f"{title}: {_reworded(m)}") for m in messages]
    return problems


def draft_report(document: Mapping, *, published: Mapping | None) -> dict:
    """What the designer shows beside a draft: its problems, its diagram and its changes against
    the latest published version (``published``, None when there is none)."""
    diagram = model_diagram(document)
    errors = draft_errors(document)
    # A valid draft is compared as publishing would store it, so that a field left to its default
    # is no change; an invalid one as it is.
    compared = document if errors else document_validate(document)
    return {
        "problems": [asdict(p) for p in describe_problems(document, errors)],
        "diagram_html": render_to_string("admin/models_registry/_diagram.html", {"diagram": diagram}),
        "changes": [change.text for change in documents_diff(published, compared)],
        "samples": sample_events(document),
    }


def handler_catalogue_data() -> list[dict]:
    """The handlers a model may name, with what they do and read, for the designer's handler choice."""
    return [asdict(handler) for handler in handler_catalogue()]


_DATA_FIELD = re.compile(r"\bdata\.([A-Za-z_][A-Za-z0-9_]*)")


def sample_events(document: Mapping) -> list[dict]:
    """One example event per event type the model names (start events first), with the data fields
    its transitions' conditions and context updates read, for "Try it" to start from."""
    fields: dict[str, dict[str, str]] = {}
    start_events = document.get("start_events")
    for event_type in start_events if isinstance(start_events, list) else []:
        if isinstance(event_type, str) and event_type:
            fields.setdefault(event_type, {})
    transitions = document.get("transitions")
    for transition in transitions if isinstance(transitions, list) else []:
        if not isinstance(transition, Mapping) or not isinstance(transition.get("event"), str):
            continue
        if not transition["event"]:
            continue
        data = fields.setdefault(transition["event"], {})
        expressions = [transition.get("when")]
        if isinstance(transition.get("set"), Mapping):
            expressions += list(transition["set"].values())
        for expression in expressions:
            for name in _DATA_FIELD.findall(expression if isinstance(expression, str) else ""):
                data.setdefault(name, "example")
    return [{"event_type": event_type, "data": data} for event_type, data in fields.items()]
