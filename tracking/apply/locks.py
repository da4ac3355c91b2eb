"""Row locks on instances, always taken in primary-key order so that two paths never deadlock.

Only the instance rows are locked (``of=("self",)``), never rows a caller joins in.
"""

from collections.abc import Iterable

from django.db.models import QuerySet

from tracking.models import ProcessInstance


def instances_for_update(instance_ids: Iterable[int]) -> QuerySet[ProcessInstance]:
    # FOR NO KEY UPDATE (PostgreSQL): two workers still exclude each other, but ingestion, whose
    # new inbox rows check their foreign key to the instance when it commits (a KEY SHARE lock),
    # neither waits for a worker in a slow handler nor deadlocks with one.
    return (
        ProcessInstance.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=list(instance_ids))
        .order_by("pk")
    )
