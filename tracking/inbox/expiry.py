"""Parked events that waited longer than their model's ``park_ttl`` become expired (beat, every 5 min)."""

from django.utils import timezone

from models_registry.models import ModelVersion
from models_registry.selectors import current_versions, version_definition
from tracking.models import EventStatus, InboxEvent


def events_expire_parked() -> int:
    """Parked events older than their model version's ``park_ttl`` become expired."""
    now = timezone.now()
    expired = 0
    parked = InboxEvent.objects.filter(status=EventStatus.PARKED)
    for version in ModelVersion.objects.filter(pk__in=parked.values("instance__version")).only("id", "document"):
        cutoff = now - version_definition(version_id=version.pk).park_ttl
        expired += parked.filter(instance__version_id=version.pk, received_at__lt=cutoff).update(
            status=EventStatus.EXPIRED, processed_at=now, reason="still parked after park_ttl"
        )
    # Events waiting for a start event that never came: the model's current version decides.
    waiting = parked.filter(instance__version__isnull=True)
    keys = set(waiting.values_list("instance__model__key", flat=True).distinct())
    for key, version in current_versions(keys=keys).items():
        cutoff = now - version_definition(version_id=version.pk).park_ttl
        expired += waiting.filter(instance__model__key=key, received_at__lt=cutoff).update(
            status=EventStatus.EXPIRED, processed_at=now, reason="no instance was started within park_ttl"
        )
    return expired
