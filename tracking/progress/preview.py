"""Staff preview of the customer page: any state of a model's draft or of a published version.

The page is the customer's own template and ``build_page``, given a made-up instance that came to
the state by the shortest way from the initial state, an hour per transition, so that the done
steps have times. Nothing is read from or written to instances. A banner says it is a preview,
and a state picker (a GET form) steps through the model's states.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from models_registry.definition import Definition, DefinitionError
from models_registry.designer import describe_problems
from models_registry.models import StatusModel
from models_registry.selectors import draft_definition, model_version, version_definition
from tracking.progress.customer_page import CustomerPage, HistoryRow, build_page
from tracking.progress.milestones import BranchPlan
from tracking.progress.selectors import version_branch_plan
from tracking.progress.views import CONTENT_SECURITY_POLICY

DRAFT = "draft"
# The customer page's policy, except that the state picker is a form that submits to this page.
PREVIEW_POLICY = CONTENT_SECURITY_POLICY.replace("form-action 'none'", "form-action 'self'")
STEP = timedelta(hours=1)


def _way_to(plan: BranchPlan, start: str, target: str) -> list[str]:
    """The shortest way from ``start`` to ``target`` through the model's transitions (BFS)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue and target not in came_from:
        state = queue.popleft()
        for successor in sorted(plan.successors[state]):
            if successor not in came_from:
                came_from[successor] = state
                queue.append(successor)
    if target not in came_from:
        return [start, target]
    way = [target]
    while (previous := came_from[way[-1]]) is not None:
        way.append(previous)
    return way[::-1]


def preview_page(
    *, definition: Definition, state: str, context: Mapping[str, Any], now: datetime, plan: BranchPlan | None = None
) -> CustomerPage:
    """The customer page of a made-up instance in ``state`` (pure: no database)."""
    document = definition.document
    plan = plan or BranchPlan.from_document(document)
    way = _way_to(plan, document["initial_state"], state)
    history = [HistoryRow(key, now - STEP * (len(way) - 1 - i)) for i, key in enumerate(way)]
    return build_page(
        document=document,
        state=state,
        context=context,
        history=history,
        updated_at=now,
        state_entered_at=now,
        stats={},
        minimum_completed=settings.STATUSTRACKER_ETA_MIN_COMPLETED,
        now=now,
        plan=plan,
    )


def _definition(model_id: str, version: str) -> tuple[Definition, BranchPlan | None, str]:
    """(definition, its branch plan or None, what it is in words); raises Http404 or DefinitionError."""
    if version == DRAFT:
        definition = draft_definition(key=model_id)
        if definition is None:
            raise Http404("No such model.")
        return definition, None, "draft"
    if version and not version.isdigit():
        raise Http404("The version is a number or “draft”.")
    published = model_version(key=model_id, number=int(version) if version else None)
    if published is None:
        if version:
            raise Http404("No such version.")
        return _definition(model_id, DRAFT)  # nothing published yet: the draft is all there is
    return (
        version_definition(version_id=published.pk),
        version_branch_plan(version_id=published.pk),
        f"version {published.number}",
    )


def _with_headers(response: HttpResponse) -> HttpResponse:
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_safe
@staff_member_required
def model_preview(request: HttpRequest, model_id: str) -> HttpResponse:
    """``?state=<key>&version=draft|<number>&context=<JSON object>``: the customer's page in that state."""
    version = request.GET.get("version", "")
    preview = {"model_id": model_id, "version": version}
    try:
        definition, plan, version_words = _definition(model_id, version)
    except DefinitionError as exc:
        # The problems in the designer's words, on their rows (only a draft can have them).
        draft = StatusModel.objects.filter(key=model_id).values_list("draft", flat=True).first() or {}
        problems = [problem.text for problem in describe_problems(draft, exc.errors)]
        preview.update(version_words="draft", problems=problems)
        return _with_headers(render(request, "tracking/preview_problems.html", {"preview": preview}, status=200))

    document = definition.document
    states = document["states"]
    state = request.GET.get("state") or document["initial_state"]
    preview.update(
        version_words=version_words,
        states=[(s["key"], s["label"]) for s in states],
        state=state,
        context_text=request.GET.get("context", ""),
    )
    if state not in {s["key"] for s in states}:
        preview["problems"] = [f"This model has no state “{state}”. Choose one of its states."]
        return _with_headers(render(request, "tracking/preview_problems.html", {"preview": preview}, status=404))

    context: Any = {}
    if preview["context_text"].strip():
        try:
            context = json.loads(preview["context_text"])
        except ValueError:
            context = None
        if not isinstance(context, dict):
            preview["context_problem"] = 'The context must be a JSON object, such as {"carrier": "DHL"}.'
            context = {}
    page = preview_page(definition=definition, state=state, context=context, now=timezone.now(), plan=plan)
    return _with_headers(
        render(
            request,
            "tracking/page.html",
            {"page": page, "preview": preview, "live_url": "", "poll_seconds": 0, "announce": False},
        )
    )
