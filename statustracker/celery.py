"""The Celery application; workers start it with ``celery -A statustracker worker``."""

import os

import kombu
from celery import Celery
from celery.signals import task_postrun, task_prerun

from tracking.inbox.reconnect import SweepOnConnect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")

app = Celery("statustracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live with the pipeline stage they belong to (tracking/apply, tracking/inbox).
app.autodiscover_tasks(["tracking.apply", "tracking.inbox", "tracking.notify"])
# The customer update mails' tasks live with the page that makes them (docs/customer-email.md).
app.autodiscover_tasks(["tracking.progress"], related_name="email_tasks")
# Each (re)connection to the broker sends every pending event again (tracking/inbox/reconnect.py).
app.steps["consumer"].add(SweepOnConnect)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(**kwargs) -> None:
    """Around every task, as Django does around every request: drop a database connection that
    is broken or older than CONN_MAX_AGE, keep the others (see CELERY_DB_REUSE_MAX in settings)."""
    from django.db import close_old_connections

    close_old_connections()


# Workaround, celery 5.7.0 with kombu 5.7.0 on Redis: a worker that holds an unacknowledged message
# (a task running, or waiting for its countdown) exits with "Unrecoverable error: AttributeError(
# "'NoneType' object has no attribute 'hostname'")" when the broker restarts. On the broken
# connection the consumer calls Connection.collect(): its close of the default channel fails
# half-way (Redis is gone) and leaves the channel open, then collect() releases the transport
# (transport.client = None) but keeps the channel. Celery 5.7.0 then also closes the connection,
# which closes that channel again; restoring the unacknowledged messages needs the released
# transport's client, and the AttributeError is not a connection error, so the worker stops.
# collect() forgets the connection and the transport; forgetting the channel too makes the second
# close a no-op, as it was before celery 5.7.0 added it. Remove this when
# tests/tracking/inbox/test_broker_restart.py passes without it.
_kombu_collect = kombu.Connection.collect


def _collect_and_forget_channel(self, socket_timeout=None):
    try:
        _kombu_collect(self, socket_timeout=socket_timeout)
    finally:
        self._default_channel = None


kombu.Connection.collect = _collect_and_forget_channel
