"""The dashboards' recompute: a beat task that queues every standard scope, one task per scope.

Registered in workers through ``CELERY_IMPORTS``; beat sends ``refresh_dashboards`` every
``DASHBOARD_REFRESH_INTERVAL_SECONDS``. A scope already queued or being computed is not queued
again, so a recompute slower than the interval does not pile up. Page views queue a scope that has
nothing stored yet with ``dashboard_request``.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from tracking.insights.selectors import DashboardScope

logger = logging.getLogger(__name__)

# The largest scopes (a year, all time) of a model with a million instances take a minute or more.
SOFT_TIME_LIMIT = 600
TIME_LIMIT = 660


@shared_task(
    name="tracking.tasks.refresh_dashboard", acks_late=True, soft_time_limit=SOFT_TIME_LIMIT, time_limit=TIME_LIMIT
)
def refresh_dashboard(model_key: str, version: int | None = None, window_days: int | None = None) -> None:
    from tracking.insights.services import dashboard_refresh

    dashboard_refresh(model_key=model_key, version=version, window_days=window_days)


def _send(scope: DashboardScope) -> bool:
    from tracking.insights.services import dashboard_unmark_queued

    try:
        refresh_dashboard.apply_async(
            kwargs={"model_key": scope.model_key, "version": scope.version_number, "window_days": scope.window_days},
        )
    # Whatever the broker or its client raises: the page still answers, and the next view (or the
    # next beat tick) queues it again.
    except Exception:
        logger.exception("could not queue the dashboard of %s", scope.model_key)
        dashboard_unmark_queued(scope)
        return False
    return True


def dashboard_request(scope: DashboardScope) -> None:
    """Queue a recompute of the scope (after the current transaction commits), unless one is queued."""
    from tracking.insights.services import dashboard_mark_queued

    if dashboard_mark_queued(scope):
        transaction.on_commit(lambda: _send(scope))


@shared_task(name="tracking.tasks.refresh_dashboards", acks_late=True)
def refresh_dashboards() -> int:
    """Beat: queue the recompute of every standard scope that is due; returns how many were queued."""
    from django.utils import timezone

    from tracking.insights.selectors import dashboard_due, standard_scopes, stored_dashboard
    from tracking.insights.services import dashboard_mark_queued

    now = timezone.now()
    return sum(
        _send(scope)
        for scope in standard_scopes(now=now)
        if dashboard_due(stored_dashboard(scope), now=now) and dashboard_mark_queued(scope)
    )
