"""The Celery application; workers start it with ``celery -A statustracker worker``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statustracker.settings")

app = Celery("statustracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
