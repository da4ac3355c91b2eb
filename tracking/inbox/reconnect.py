"""The sweep on connection: each time a worker connects to the broker, every pending event is sent again.

A broker that restarts keeps nothing (Redis here is run without persistence) and a worker drops
the tasks it held when its connection broke (Celery cancels tasks waiting for their countdown, and
the broker was to hand them out again), so after an outage the inbox may hold pending events whose
tasks are gone, and events stored during the outage whose tasks were never sent
(tracking.inbox.dispatch). The periodic sweep finds them only once they are older than
STATUSTRACKER_SWEEP_AFTER_SECONDS; this step finds them as soon as a worker is back: its start runs
on every (re)connection of the worker's consumer, and asks for a sweep of every pending event,
whatever its age. An event whose task still exists is then applied by whichever task comes first,
and the other finds nothing to do (tracking.apply.applier). A worker's plain start costs the same:
one message and one query on the partial index of pending events.
"""

from __future__ import annotations

import logging

from celery import bootsteps

logger = logging.getLogger(__name__)


class SweepOnConnect(bootsteps.StartStopStep):
    """A consumer bootstep, after the broker connection: ``app.steps["consumer"].add(SweepOnConnect)``."""

    requires = {"celery.worker.consumer.connection:Connection"}

    def start(self, parent) -> None:
        from tracking.inbox.tasks import sweep_pending

        try:
            sweep_pending.apply_async(kwargs={"older_than_seconds": 0})
        # The connection may break again at once; the next connection asks again, and the
        # periodic sweep remains. Nothing here may stop the worker.
        except Exception:
            logger.warning("connected to the broker, but could not ask for a sweep of pending events", exc_info=True)
        else:
            logger.info("connected to the broker: asked for a sweep of every pending event")
