"""Simulated traffic for the example model, so that a new installation has something to show.

Orders go through ``examples/order-fulfilment.yaml`` the way real ones would: most are paid,
packed, picked up and delivered; some payments fail first, a few orders are cancelled. Pure
Python; the ``simulate_traffic`` command sends what it yields.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

CARRIERS = ["DHL", "UPS", "DPD", "GLS"]


@dataclass
class _Order:
    transaction_id: str
    script: list[tuple[str, dict]] = field(default_factory=list)


def _script(rng: random.Random) -> list[tuple[str, dict]]:
    script: list[tuple[str, dict]] = [("order.placed", {"items": rng.randint(1, 5)})]
    if rng.random() < 0.15:
        script.append(("payment.failed", {"reason": "card declined"}))
        if rng.random() < 0.3:
            return script + [("order.cancelled", {"reason": "payment not completed"})]
    script.append(("payment.captured", {"amount": round(rng.uniform(10, 300), 2), "currency": "EUR"}))
    if rng.random() < 0.05:
        return script + [("order.cancelled", {"reason": "customer request"})]
    script.append(("warehouse.packed", {}))
    carrier = rng.choice(CARRIERS)
    tracking_number = f"{carrier[:2]}{rng.randint(10**8, 10**9 - 1)}"
    script.append(("carrier.picked_up", {"carrier": carrier, "tracking_number": tracking_number}))
    script.append(("carrier.delivered", {}))
    return script


def order_traffic(*, seed: int | None = None, concurrent_orders: int = 20) -> Iterator[dict]:
    """An endless stream of envelopes: ``concurrent_orders`` orders in flight, interleaved."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    counter = 0
    in_flight: list[_Order] = []
    while True:
        while len(in_flight) < concurrent_orders:
            counter += 1
            in_flight.append(_Order(f"SIM-{run}-{counter}", _script(rng)))
        order = rng.choice(in_flight)
        event_type, data = order.script.pop(0)
        if not order.script:
            in_flight.remove(order)
        yield {
            "event_id": f"sim-{uuid.uuid4().hex}",
            "model_id": "order-fulfilment",
            "transaction_id": order.transaction_id,
            "event_type": event_type,
            "source": "simulator",
            "data": data,
        }
