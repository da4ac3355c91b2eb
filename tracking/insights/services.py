"""Writing a dashboard's figures to the shared cache, where the page reads them.

Only background tasks compute figures (``tracking.insights.tasks``); a scope being computed is
marked in the cache, so that the beat task and page views queue it once, not once per tick or view.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from models_registry.models import ModelVersion
from tracking.insights.figures import Dashboard
from tracking.insights.selectors import (
    DashboardScope,
    cache_key,
    dashboard_compute,
    dashboard_scope,
    refresh_interval,
)

logger = logging.getLogger(__name__)

# Kept well past the refresh interval: when beat stops, the page still shows the last figures, with
# their age and a warning, rather than nothing.
STORED_FOR = timedelta(days=7)
# A queued recompute that never finished (its worker killed) is queued again after this.
QUEUED_FOR = timedelta(minutes=15)


def _stored_for() -> int:
    return int(max(STORED_FOR, 10 * refresh_interval()).total_seconds())


def dashboard_store(scope: DashboardScope, dashboard: Dashboard) -> None:
    cache.set(cache_key(scope), dashboard, _stored_for())


def dashboard_refresh(*, model_key: str, version: int | None, window_days: int | None) -> Dashboard | None:
    """Work out the figures of one scope now and store them; None when the model or version is gone.

    A model with a single version has the same figures for that version as for every version:
    they are worked out once and stored for both.
    """
    scope = dashboard_scope(model_key=model_key, version=version, window_days=window_days)
    if scope is None:
        return None
    started = time.perf_counter()
    try:
        dashboard = dashboard_compute(scope)
        dashboard = dataclasses.replace(dashboard, computed_in=time.perf_counter() - started)
        dashboard_store(scope, dashboard)
        numbers = list(ModelVersion.objects.filter(model_id=scope.model_id).values_list("number", flat=True)[:2])
        if len(numbers) == 1:
            twin = dashboard_scope(model_key=model_key, version=numbers[0], window_days=window_days, now=scope.now)
            if twin is not None and twin != scope:
                dashboard_store(twin, dataclasses.replace(dashboard, version=numbers[0]))
    finally:
        cache.delete(cache_key(scope, "queued"))
    logger.info(
        "dashboard of %s (version %s, window %s days) computed in %.1f s",
        model_key,
        version or "all",
        window_days or "all",
        dashboard.computed_in,
    )
    return dashboard


def dashboard_mark_queued(scope: DashboardScope) -> bool:
    """Mark the scope as queued for a recompute; False when it already is (queue nothing then)."""
    return cache.add(cache_key(scope, "queued"), timezone.now(), int(QUEUED_FOR.total_seconds()))


def dashboard_unmark_queued(scope: DashboardScope) -> None:
    cache.delete(cache_key(scope, "queued"))
