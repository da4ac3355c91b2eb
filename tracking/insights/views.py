"""The dashboard of a model for staff, in the admin's look, and its event-log download.

The page shows the figures the last background recompute stored and never works them out itself
(docs/dashboard.md): with nothing stored yet for the scope asked for, it queues the recompute and
says so.

Routed in ``statustracker/urls.py`` under ``admin/dashboard/`` and wrapped in
``admin.site.admin_view`` (active staff, logged in); each view also asks for the view permission on
process instances, since the figures are made of them.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from models_registry.diagram import KIND_COLOURS
from models_registry.selectors import model_version_numbers
from tracking.insights.event_log import FORMATS
from tracking.insights.figures import Dashboard
from tracking.insights.paths import paths_diagram
from tracking.insights.selectors import (
    DEFAULT_WINDOW,
    WINDOWS,
    DashboardScope,
    dashboard_queued_at,
    dashboard_scope,
    event_log_chunks,
    model_title,
    refresh_every,
    refresh_interval,
    stored_dashboard,
)
from tracking.insights.tasks import dashboard_request

VIEW_INSTANCES = "tracking.view_processinstance"
ALL = "all"
OUTCOME_COLOURS = {"started": "#3b6fb6", "succeeded": "#2e7d32", "failed": "#c62828"}
# Stored figures older than this many refresh intervals are flagged: the recompute has stopped.
STALE_AFTER_INTERVALS = 3
# A recompute queued longer ago than this without a result: say that a worker may be missing.
SLOW_AFTER = timedelta(minutes=5)


class DashboardFilterForm(forms.Form):
    version = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Version")
    window = forms.ChoiceField(required=False, label="Started in")

    def __init__(self, data, *, versions: list[int], default_window: str):
        # Bound with the default window when none was asked for, so the picker shows what is shown.
        super().__init__({"window": default_window, **data.dict()})
        self.fields["version"].choices = [("", "every version"), *((n, f"version {n}") for n in reversed(versions))]
        self.fields["window"].choices = [*((str(days), f"the last {days} days") for days in WINDOWS), (ALL, "all time")]
        self.default_window = default_window

    def scope_arguments(self) -> dict:
        """version (number or None) and window_days (or None: all time); invalid input is a 404."""
        if not self.is_valid():
            raise Http404("No such version or time window.")
        window = self.cleaned_data["window"] or self.default_window
        return {"version": self.cleaned_data["version"], "window_days": None if window == ALL else int(window)}


def _scope(request: HttpRequest, model_id: str, *, default_window: str) -> tuple[DashboardScope, DashboardFilterForm]:
    if not request.user.has_perm(VIEW_INSTANCES):
        raise PermissionDenied
    versions = model_version_numbers(key=model_id)
    form = DashboardFilterForm(request.GET, versions=versions, default_window=default_window)
    scope = dashboard_scope(model_key=model_id, **form.scope_arguments())
    if scope is None:
        raise Http404("No such model or version.")
    return scope, form


def duration_text(seconds: float | None) -> str:
    """A duration for people: "2 d 4 h", "3 h 20 min", "12 min", "40 s"."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def _charts(dashboard: Dashboard) -> dict:
    """What static/tracking/insights/dashboard.js draws with Chart.js (the tables say the same)."""
    shown = [state for state in dashboard.states if state.now]
    return {
        "states": {
            "labels": [state.label for state in shown],
            "counts": [state.now for state in shown],
            "colours": [KIND_COLOURS[state.kind][1] for state in shown],
        },
        "days": {
            "labels": [day.day.isoformat() for day in dashboard.days],
            "series": [
                {
                    "label": name.capitalize(),
                    "colour": OUTCOME_COLOURS[name],
                    "values": [getattr(d, name) for d in dashboard.days],
                }
                for name in ("started", "succeeded", "failed")
            ],
        },
    }


def _state_rows(dashboard: Dashboard) -> list[dict]:
    return [
        {
            "key": state.key,
            "label": state.label,
            "kind": state.kind,
            "now": state.now,
            "visits": state.dwell.count,
            "median": duration_text(state.dwell.median),
            "p90": duration_text(state.dwell.p90),
            "expected": duration_text(state.expected_within) if state.expected_within else "",
            "past": _share(state.past_expected, state.visits) if state.visits else "",
            "past_counts": f"{state.past_expected} of {state.visits}" if state.visits else "",
        }
        for state in dashboard.states
        if state.now or state.dwell.count or state.visits
    ]


def _figures_context(dashboard: Dashboard) -> dict:
    return {
        "dashboard": dashboard,
        "outcomes": [
            ("Succeeded", dashboard.statuses.get("succeeded", 0), "succeeded"),
            ("Failed", dashboard.statuses.get("failed", 0), "failed"),
            ("Still open", dashboard.open_instances, "open"),
        ],
        "shares": {
            "succeeded": _share(dashboard.statuses.get("succeeded", 0), dashboard.instances),
            "failed": _share(dashboard.statuses.get("failed", 0), dashboard.instances),
            "open": _share(dashboard.open_instances, dashboard.instances),
        },
        "state_rows": _state_rows(dashboard),
        "milestone_rows": [
            {
                "from": span.from_label,
                "to": span.to_label,
                "count": span.spread.count,
                "median": duration_text(span.spread.median),
                "p90": duration_text(span.spread.p90),
            }
            for span in dashboard.milestones
        ],
        "paths": paths_diagram(dashboard),
        "path_rows": sorted(dashboard.follows.items(), key=lambda item: -item[1]),
        "charts": _charts(dashboard),
    }


@require_safe
def model_dashboard_page(request: HttpRequest, model_id: str) -> HttpResponse:
    """``?version=<number>&window=7|30|90|365|all``: where the model's instances get stuck.

    Reads the stored figures only; a scope with none stored yet is queued and the page says so."""
    scope, form = _scope(request, model_id, default_window=str(DEFAULT_WINDOW))
    dashboard = stored_dashboard(scope)
    interval = refresh_interval()
    now = timezone.now()
    context = {**admin.site.each_context(request), "form": form, "subtitle": model_id}
    context["interval_text"] = duration_text(interval.total_seconds())
    if dashboard is None:
        dashboard_request(scope)
        queued_at = dashboard_queued_at(scope) or now
        name = model_title(scope)
        context |= {"queued_at": queued_at, "slow": now - queued_at > SLOW_AFTER}
    else:
        name = dashboard.model_name
        context |= _figures_context(dashboard)
        every = refresh_every(dashboard)
        context |= {
            "refresh_text": duration_text(every.total_seconds()),
            "stale": now - dashboard.computed_at > STALE_AFTER_INTERVALS * every,
            "now_day": timezone.localtime(now).strftime("%Y%m%d"),
        }
    query = {"window": ALL if scope.window_days is None else scope.window_days}
    if scope.version_number is not None:
        query["version"] = scope.version_number
    context["downloads"] = [
        (
            format.upper() if format != "ocel" else "OCEL 2.0 (JSON)",
            f"{reverse('model-event-log', args=[model_id])}?{urlencode({**query, 'format': format})}",
        )
        for format in FORMATS
    ]
    context |= {"title": f"Dashboard: {name}", "model_name": name}
    return render(request, "admin/tracking/insights/dashboard.html", context)


def event_log_response(scope: DashboardScope, format: str) -> StreamingHttpResponse:
    """The scope's event log as a streamed download (shared by the page's links and the API)."""
    media_type, extension = FORMATS[format]
    response = StreamingHttpResponse(event_log_chunks(scope, format), content_type=f"{media_type}; charset=utf-8")
    name = scope.model_key + (f"-v{scope.version_number}" if scope.version_number else "")
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@require_safe
def model_event_log_download(request: HttpRequest, model_id: str) -> StreamingHttpResponse:
    """``?format=xes|ocel|csv&version=<number>&window=…``: the histories the dashboard counts."""
    format = request.GET.get("format", "xes")
    if format not in FORMATS:
        raise Http404("The format is xes, ocel or csv.")
    scope, _ = _scope(request, model_id, default_window=ALL)
    return event_log_response(scope, format)
