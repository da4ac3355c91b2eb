"""A generated history of the example model whose figures are known in advance (see KNOWN).

Rows are written directly, with the times chosen here: five orders started three days ago (two
delivered, one cancelled from on hold, two still open) and one started 40 days ago, outside a
30-day window, plus a reserved instance that never started.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from models_registry.services import model_import, parse_documents
from tests.conftest import EXAMPLES
from tracking.models import STATUS_BY_KIND, InstanceStatus, ProcessInstance, TransitionRecord

HOUR = 3600.0
# Hours after the start of the cohort's day (01:00 UTC three days ago) at which each order entered each state.
ORDERS = {
    "A": [("received", 0), ("paid", 1), ("packed", 3), ("shipped", 4), ("delivered", 10)],
    "B": [("received", 0), ("paid", 3), ("packed", 4), ("shipped", 8), ("delivered", 20)],
    "C": [("received", 0), ("on_hold", 4), ("cancelled", 6)],
    "D": [("received", 0), ("paid", 2)],
    "E": [("received", 1)],
}
OLD_ORDER = [("received", -40 * 24), ("paid", -40 * 24 + 5)]  # "OLD", 40 days earlier
KINDS = {"delivered": "success", "cancelled": "failure", "on_hold": "exception"}

KNOWN = {
    # state: (ended visits, median, p90) in seconds, of the five recent orders
    "dwell": {
        "received": (4, 2.5 * HOUR, 3.7 * HOUR),
        "paid": (2, 1.5 * HOUR, 1.9 * HOUR),
        "packed": (2, 2.5 * HOUR, 3.7 * HOUR),
        "shipped": (2, 9 * HOUR, 11.4 * HOUR),
        "on_hold": (1, 2 * HOUR, 2 * HOUR),
    },
    # state: (visits, of them longer than expected_within); received PT2H, paid PT1H (equal is not past)
    "past": {"received": (5, 3), "paid": (3, 2)},
    "now": {"received": 1, "paid": 1, "delivered": 2, "cancelled": 1},
    "statuses": {"succeeded": 2, "failed": 1, "active": 2},
    "follows": {
        ("received", "paid"): 3,
        ("received", "on_hold"): 1,
        ("paid", "packed"): 2,
        ("packed", "shipped"): 2,
        ("shipped", "delivered"): 2,
        ("on_hold", "cancelled"): 1,
    },
    "starts": {"received": 5},
    "ends": {"delivered": 2, "cancelled": 1, "paid": 1, "received": 1},
    # (from, to): (instances, median, p90) in seconds
    "milestones": [
        ("Order received", "Payment confirmed", 3, 2 * HOUR, 2.8 * HOUR),
        ("Payment confirmed", "Packed", 2, 1.5 * HOUR, 1.9 * HOUR),
        ("Packed", "On its way", 2, 2.5 * HOUR, 3.7 * HOUR),
    ],
}


def cohort_start(now: datetime | None = None) -> datetime:
    today = (now or timezone.now()).astimezone(UTC)
    return today.replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=3)


def example_document() -> dict:
    document = copy.deepcopy(parse_documents((EXAMPLES / "order-fulfilment.yaml").read_text())[0])
    for state in document["states"]:
        if state["key"] == "received":
            state["expected_within"] = "PT2H"
        if state["key"] == "paid":
            state["expected_within"] = "PT1H"
    return document


def known_history(now: datetime | None = None):
    """Write the history; returns the model version."""
    version, _ = model_import(document=example_document())
    start = cohort_start(now)
    orders = {**ORDERS, "OLD": OLD_ORDER}
    for transaction_id, steps in orders.items():
        state, entered = steps[-1]
        kind = KINDS.get(state, "step")
        instance = ProcessInstance.objects.create(
            model=version.model,
            version=version,
            transaction_id=transaction_id,
            state=state,
            status=STATUS_BY_KIND[kind],
            started_at=start + timedelta(hours=steps[0][1]),
            state_entered_at=start + timedelta(hours=entered),
        )
        TransitionRecord.objects.bulk_create(
            TransitionRecord(
                instance=instance,
                from_state=steps[i - 1][0] if i else "",
                to_state=key,
                occurred_at=start + timedelta(hours=hours),
            )
            for i, (key, hours) in enumerate(steps)
        )
    ProcessInstance.objects.create(model=version.model, transaction_id="NOT-STARTED", status=InstanceStatus.WAITING)
    return version


def recompute_dashboards() -> None:
    """What the workers do after a beat tick: work out and store every standard scope's figures."""
    from tracking.insights.selectors import standard_scopes
    from tracking.insights.tasks import refresh_dashboard

    for scope in standard_scopes():
        refresh_dashboard(scope.model_key, scope.version_number, scope.window_days)
