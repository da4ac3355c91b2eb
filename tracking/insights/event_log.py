"""Instances' histories as an event log for process-mining tools: XES, OCEL 2.0 JSON or CSV.

One case per transaction (the case id is the transaction id), one event per history row: the
activity is the state entered (its key; the label is an attribute), the time is when the source
system saw the event, and the event's type and id, the version, and for manual moves the user and
note come along. Events are written in the order they were applied within each case.

Written by hand, streaming, with the standard library (XML through ``xml.sax.saxutils``, JSON and
CSV through their modules): a million cases never sit in memory, and the formats are small enough
that a process-mining library (pm4py pulls in pandas, scipy and matplotlib) would only add weight
at run time. Tests read each format back with pm4py (tests/tracking/insights/test_event_log.py).

Pure: the writers take rows and yield text; ``tracking.insights.selectors`` reads the rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import XMLGenerator

FORMATS = {
    # format: (media type, file extension)
    "xes": ("application/xml", "xes"),
    "ocel": ("application/json", "ocel.json"),
    "csv": ("text/csv", "csv"),
}
CSV_COLUMNS = (
    "case_id",
    "activity",
    "timestamp",
    "from_state",
    "state_label",
    "event_type",
    "event_id",
    "version",
    "actor",
    "note",
)
XES_EXTENSIONS = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
)
OCEL_OBJECT_TYPE = "transaction"
OCEL_EVENT_ATTRIBUTES = ("from_state", "event_type", "event_id", "version", "actor", "note")
FLUSH_EVERY = 500  # cases (XES) or rows per chunk of streamed text


@dataclass(frozen=True)
class LogEvent:
    record_id: int
    transaction_id: str
    from_state: str
    to_state: str
    occurred_at: datetime
    event_type: str | None
    event_id: str | None
    version: int | None
    actor: str | None
    note: str


@dataclass(frozen=True)
class LogCase:
    transaction_id: str
    state: str
    status: str
    version: int | None
    started_at: datetime | None


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _attributes(event: LogEvent) -> dict[str, str]:
    """The event's optional attributes that have a value, as text."""
    values = {
        "from_state": event.from_state,
        "event_type": event.event_type,
        "event_id": event.event_id,
        "version": None if event.version is None else str(event.version),
        "actor": event.actor,
        "note": event.note,
    }
    return {name: value for name, value in values.items() if value}


def write_csv(events: Iterable[LogEvent], *, labels: Mapping[str, str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, event in enumerate(events, start=1):
        writer.writerow(
            (
                event.transaction_id,
                event.to_state,
                _time(event.occurred_at),
                event.from_state,
                labels.get(event.to_state, event.to_state),
                event.event_type or "",
                event.event_id or "",
                "" if event.version is None else event.version,
                event.actor or "",
                event.note,
            )
        )
        if i % FLUSH_EVERY == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_xes(events: Iterable[LogEvent], *, log_name: str, labels: Mapping[str, str]) -> Iterator[str]:
    """IEEE 1849-2016 XES: a trace per case, with the concept, time and organizational extensions."""
    buffer = io.StringIO()
    xml = XMLGenerator(buffer, encoding="utf-8", short_empty_elements=True)

    def attribute(kind: str, key: str, value: str) -> None:
        xml.startElement(kind, {"key": key, "value": value})
        xml.endElement(kind)

    xml.startDocument()
    xml.startElement(
        "log",
        {"xes.version": "1849-2016", "xes.features": "nested-attributes", "xmlns": "http://www.xes-standard.org/"},
    )
    for name, prefix, uri in XES_EXTENSIONS:
        xml.startElement("extension", {"name": name, "prefix": prefix, "uri": uri})
        xml.endElement("extension")
    xml.startElement("global", {"scope": "trace"})
    attribute("string", "concept:name", "__INVALID__")
    xml.endElement("global")
    xml.startElement("global", {"scope": "event"})
    attribute("string", "concept:name", "__INVALID__")
    attribute("date", "time:timestamp", "1970-01-01T00:00:00.000+00:00")
    xml.endElement("global")
    xml.startElement("classifier", {"name": "Activity", "keys": "concept:name"})
    xml.endElement("classifier")
    attribute("string", "concept:name", log_name)

    case = None
    cases = 0
    for event in events:
        if event.transaction_id != case:
            if case is not None:
                xml.endElement("trace")
                cases += 1
                if cases % FLUSH_EVERY == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            case = event.transaction_id
            xml.startElement("trace", {})
            attribute("string", "concept:name", case)
        xml.startElement("event", {})
        attribute("string", "concept:name", event.to_state)
        attribute("date", "time:timestamp", _time(event.occurred_at))
        attribute("string", "state_label", labels.get(event.to_state, event.to_state))
        for name, value in _attributes(event).items():
            attribute("string", "org:resource" if name == "actor" else name, value)
        xml.endElement("event")
    if case is not None:
        xml.endElement("trace")
    xml.endElement("log")
    xml.endDocument()
    yield buffer.getvalue() + "\n"


def write_ocel(
    cases: Iterable[LogCase], events: Iterable[LogEvent], *, model_key: str, labels: Mapping[str, str]
) -> Iterator[str]:
    """OCEL 2.0 JSON: one object type (the transaction), one event type per state entered.

    Each event relates to its transaction's object with the qualifier ``case``; flattening the log
    on the transaction object type gives back the case view of the other formats.
    """
    string = "string"
    yield (
        '{"objectTypes": '
        + json.dumps(
            [
                {
                    "name": OCEL_OBJECT_TYPE,
                    "attributes": [{"name": name, "type": string} for name in ("model", "status", "state")],
                }
            ]
        )
        + ', "eventTypes": '
        + json.dumps(
            [
                {
                    "name": key,
                    "attributes": [{"name": name, "type": string} for name in ("state_label", *OCEL_EVENT_ATTRIBUTES)],
                }
                for key in labels
            ]
        )
        + ', "objects": ['
    )
    chunk = []
    for i, case in enumerate(cases):
        moment = _time(case.started_at) if case.started_at else "1970-01-01T00:00:00+00:00"
        chunk.append(
            ("," if i else "")
            + json.dumps(
                {
                    "id": case.transaction_id,
                    "type": OCEL_OBJECT_TYPE,
                    "attributes": [
                        {"name": "model", "time": moment, "value": model_key},
                        {"name": "status", "time": moment, "value": case.status},
                        {"name": "state", "time": moment, "value": case.state},
                    ],
                }
            )
        )
        if len(chunk) == FLUSH_EVERY:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk) + '], "events": ['
    chunk = []
    for i, event in enumerate(events):
        attributes = {"state_label": labels.get(event.to_state, event.to_state), **_attributes(event)}
        chunk.append(
            ("," if i else "")
            + json.dumps(
                {
                    "id": f"t{event.record_id}",
                    "type": event.to_state,
                    "time": _time(event.occurred_at),
                    "attributes": [{"name": name, "value": value} for name, value in attributes.items()],
                    "relationships": [{"objectId": event.transaction_id, "qualifier": "case"}],
                }
            )
        )
        if len(chunk) == FLUSH_EVERY:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk) + "]}\n"


def write_event_log(
    format: str,
    *,
    cases: Iterable[LogCase],
    events: Iterable[LogEvent],
    model_key: str,
    labels: Mapping[str, str],
) -> Iterator[str]:
    """The event log in ``format`` (one of ``FORMATS``), as chunks of text."""
    if format == "xes":
        return write_xes(events, log_name=model_key, labels=labels)
    if format == "ocel":
        return write_ocel(cases, events, model_key=model_key, labels=labels)
    if format == "csv":
        return write_csv(events, labels=labels)
    raise ValueError(f"unknown event log format {format!r}")
