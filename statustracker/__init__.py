"""statustracker: event-driven progress tracking for multi-step service requests."""

from statustracker.celery import app as celery_app

__all__ = ("celery_app",)
