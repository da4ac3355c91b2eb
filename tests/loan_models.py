"""Status models whose path branches, for the tests of the customer page's branch rule.

``LOAN`` is the issue's loan: applied -> under review -> approved (success) or declined (failure),
with a withdrawal that can come at any point (a way out, not a branch) and a detour for missing
documents. ``LOAN_PAID_OUT`` puts a step after the decision and names the customer's steps
(``milestones``); ``DELIVERY`` branches between two successes; ``ROUTES`` between two runs of
steps that meet again before the end.
"""

from __future__ import annotations

LOAN = {
    "id": "loan",
    "name": "Loan application",
    "initial_state": "applied",
    "start_events": ["loan.applied"],
    "states": [
        {"key": "applied", "label": "Application received"},
        {"key": "under_review", "label": "Under review", "description": "A loan officer is looking at it."},
        {"key": "approved", "label": "Approved", "kind": "success"},
        {"key": "declined", "label": "Declined", "kind": "failure"},
        {"key": "documents_needed", "label": "Documents needed", "kind": "exception"},
        {"key": "withdrawn", "label": "Withdrawn", "kind": "failure"},
    ],
    "transitions": [
        {"event": "review.started", "from": ["applied"], "to": "under_review"},
        {"event": "documents.requested", "from": ["under_review"], "to": "documents_needed"},
        {"event": "documents.received", "from": ["documents_needed"], "to": "under_review"},
        {"event": "loan.approved", "from": ["under_review"], "to": "approved"},
        {"event": "loan.declined", "from": ["under_review"], "to": "declined"},
        {"event": "loan.withdrawn", "from": "*", "to": "withdrawn"},
    ],
}

LOAN_PAID_OUT = {
    "id": "loan-paid-out",
    "name": "Loan",
    "initial_state": "applied",
    "states": [
        {"key": "applied", "label": "Application received"},
        {"key": "checking", "label": "Checking"},
        {"key": "scoring", "label": "Scoring"},
        {"key": "approved", "label": "Approved"},
        {"key": "paid_out", "label": "Money paid out", "kind": "success"},
        {"key": "declined", "label": "Declined", "kind": "failure"},
    ],
    "transitions": [
        {"event": "check", "from": ["applied"], "to": "checking"},
        {"event": "score", "from": ["checking"], "to": "scoring"},
        {"event": "approve", "from": ["checking", "scoring"], "to": "approved"},
        {"event": "decline", "from": ["checking", "scoring"], "to": "declined"},
        {"event": "pay", "from": ["approved"], "to": "paid_out"},
    ],
    "milestones": [
        {"key": "received", "label": "Received", "states": ["applied"]},
        {"key": "review", "label": "In review", "states": ["checking", "scoring"]},
        {"key": "approved", "label": "Approved", "states": ["approved"]},
    ],
}

DELIVERY = {
    "id": "delivery",
    "name": "Your order",
    "initial_state": "ordered",
    "states": [
        {"key": "ordered", "label": "Ordered"},
        {"key": "shipped", "label": "Shipped"},
        {"key": "delivered", "label": "Delivered", "kind": "success"},
        {"key": "collected", "label": "Collected at the shop", "kind": "success"},
    ],
    "transitions": [
        {"event": "ship", "from": ["ordered"], "to": "shipped"},
        {"event": "deliver", "from": ["shipped"], "to": "delivered"},
        {"event": "collect", "from": ["shipped"], "to": "collected"},
    ],
}

ROUTES = {
    "id": "routes",
    "name": "Repair",
    "initial_state": "received",
    "states": [
        {"key": "received", "label": "Received"},
        {"key": "quick_fix", "label": "Quick fix"},
        {"key": "sent_to_workshop", "label": "Sent to the workshop"},
        {"key": "workshop_repair", "label": "Workshop repair"},
        {"key": "tested", "label": "Tested"},
        {"key": "returned", "label": "Returned to you", "kind": "success"},
    ],
    "transitions": [
        {"event": "fix", "from": ["received"], "to": "quick_fix"},
        {"event": "send", "from": ["received"], "to": "sent_to_workshop"},
        {"event": "repair", "from": ["sent_to_workshop"], "to": "workshop_repair"},
        {"event": "test", "from": ["quick_fix", "workshop_repair"], "to": "tested"},
        {"event": "return", "from": ["tested"], "to": "returned"},
    ],
}
