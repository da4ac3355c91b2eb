"""A stream of order events as producers send it: interleaved orders, some events twice, some early.

Pure Python (no Django), so that the benchmarks outside the test suite make the same traffic as
the Kinesis tests. ``tests.reference_replay.replay`` gives the outcome any arrival order of it must
have.
"""

from __future__ import annotations

import random
import uuid


def order_script(rng: random.Random) -> list[tuple[str, dict]]:
    """One order's events, sometimes out of order, duplicated or with a cancel the model ignores."""
    script: list[tuple[str, dict]] = [("order.placed", {"items": rng.randint(1, 5)})]
    if rng.random() < 0.2:
        script.append(("payment.failed", {"reason": "card declined"}))
        if rng.random() < 0.4:
            script.append(("order.cancelled", {} if rng.random() < 0.5 else {"reason": "not paid"}))
    script.append(("payment.captured", {"amount": rng.randint(10, 300)}))
    script.append(("warehouse.packed", {}))
    carrier = rng.choice(["DHL", "UPS", "DPD"])
    script.append(("carrier.picked_up", {"carrier": carrier, "tracking_number": f"{carrier}{rng.randint(1, 10**6)}"}))
    if rng.random() < 0.7:
        script.append(("carrier.delivered", {}))
    # Out of order: the next event arrives first (it parks until its turn).
    if rng.random() < 0.2:
        i = rng.randrange(0, len(script) - 1)
        script[i], script[i + 1] = script[i + 1], script[i]
    return script


def order_events(*, count: int, seed: int, in_flight: int = 200, prefix: str = "T") -> list[dict]:
    """``count`` envelopes of interleaved orders (about 5 events each), some delivered twice."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    events: list[dict] = []
    orders: list[tuple[str, list]] = []
    number = 0
    while len(events) < count:
        while len(orders) < in_flight:
            number += 1
            orders.append((f"{prefix}-{run}-{number}", order_script(rng)))
        index = rng.randrange(len(orders))
        transaction_id, script = orders[index]
        event_type, data = script.pop(0)
        if not script:
            orders.pop(index)
        envelope = {
            "event_id": f"{transaction_id}-{uuid.uuid4().hex[:8]}",
            "model_id": "order-fulfilment",
            "transaction_id": transaction_id,
            "event_type": event_type,
            "occurred_at": "2026-11-26T10:00:00Z",
            "source": "test",
            "data": data,
        }
        events.append(envelope)
        if rng.random() < 0.02 and len(events) < count:
            events.append(envelope)  # a redelivery: same event id
    return events
