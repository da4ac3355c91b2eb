"""The event log read back by pm4py: the same cases and events, and the dashboard's directly-follows graph.

pm4py is a test dependency only (requirements-dev.txt): the export writes the formats by hand.
"""

import json
from io import StringIO

import pandas as pd
import pm4py
import pytest
from django.core.management import CommandError, call_command

from tests.tracking.insights.history import ORDERS, known_history
from tracking.insights.selectors import dashboard_compute, dashboard_scope

pytestmark = pytest.mark.django_db

EVENTS = sum(len(steps) for steps in ORDERS.values())


@pytest.fixture
def history():
    return known_history()


def export(tmp_path, format: str, *options: str):
    path = tmp_path / f"log.{format}"
    call_command("export_event_log", "order-fulfilment", "--format", format, "--output", str(path), *options)
    return path


def dashboard_graph():
    dashboard = dashboard_compute(dashboard_scope(model_key="order-fulfilment", version=None, window_days=30))
    return dict(dashboard.follows), dict(dashboard.starts), dict(dashboard.ends)


def graph(log):
    dfg, starts, ends = pm4py.discover_dfg(log)
    return dict(dfg), dict(starts), dict(ends)


def test_xes(history, tmp_path):
    log = pm4py.read_xes(str(export(tmp_path, "xes", "--window", "30")))

    assert log["case:concept:name"].nunique() == len(ORDERS)
    assert len(log) == EVENTS
    assert graph(log) == dashboard_graph()
    manual = log[log["case:concept:name"] == "C"]
    assert list(manual["concept:name"]) == ["received", "on_hold", "cancelled"]
    assert list(manual["state_label"]) == ["Order received", "On hold", "Cancelled"]


def test_csv(history, tmp_path):
    frame = pd.read_csv(export(tmp_path, "csv", "--window", "30"), dtype={"case_id": str})
    log = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity", timestamp_key="timestamp")

    assert log["case:concept:name"].nunique() == len(ORDERS)
    assert len(log) == EVENTS
    assert graph(log) == dashboard_graph()


def test_ocel(history, tmp_path):
    ocel = pm4py.read_ocel2_json(str(export(tmp_path, "ocel", "--window", "30")))
    log = pm4py.ocel_flattening(ocel, "transaction")

    assert len(ocel.objects) == len(ORDERS)
    assert len(ocel.events) == EVENTS
    assert log["case:concept:name"].nunique() == len(ORDERS)
    assert graph(log) == dashboard_graph()


def test_standard_output_and_every_instance_by_default(history):
    out = StringIO()

    call_command("export_event_log", "order-fulfilment", "--format", "csv", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + EVENTS + 2  # the old order's two transitions too
    assert lines[1].startswith("A,received,")


def test_an_unknown_model_or_version(history):
    with pytest.raises(CommandError, match="no model 'nope'"):
        call_command("export_event_log", "nope")
    with pytest.raises(CommandError, match="with version 3"):
        call_command("export_event_log", "order-fulfilment", "--model-version", "3")


def test_ocel_declares_its_types(history):
    out = StringIO()
    call_command("export_event_log", "order-fulfilment", "--format", "ocel", stdout=out)

    document = json.loads(out.getvalue())
    assert [t["name"] for t in document["objectTypes"]] == ["transaction"]
    assert {t["name"] for t in document["eventTypes"]} >= {"received", "paid", "delivered", "cancelled"}
    assert document["events"][0]["relationships"] == [{"objectId": "A", "qualifier": "case"}]
