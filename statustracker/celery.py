"""The Celery application; workers start it with ``celery -A statustracker worker``."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")

app = Celery("statustracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live with the pipeline stage they belong to (tracking/apply, tracking/inbox).
app.autodiscover_tasks(["tracking.apply", "tracking.inbox"])


@task_prerun.connect
@task_postrun.connect
def close_old_connections(**kwargs) -> None:
    """Around every task, as Django does around every request: drop a database connection that
    is broken or older than CONN_MAX_AGE, keep the others (see CELERY_DB_REUSE_MAX in settings)."""
    from django.db import close_old_connections

    close_old_connections()
