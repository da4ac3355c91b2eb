"""The delay check (beat): open instances that have stayed in a state past its ``expected_within``
become ``delayed`` once per stay — a ``delayed`` notification for the subscriptions that want it,
and one alert mail per run to the operators (``STATUSTRACKER_DELAY_ALERT_EMAILS``).

Each (version, state) with an ``expected_within`` is one query on the partial index
``instance_open_since`` (version, state, state_entered_at of open instances), never a table scan.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from models_registry.models import ModelVersion
from models_registry.selectors import version_definition
from tracking.bulk import bulk_insert
from tracking.models import InstanceStatus, ProcessInstance
from tracking.notify.changes import milestone_of_states
from tracking.notify.emails import email_changes_write
from tracking.notify.models import ChangeKind, DelayNotice
from tracking.notify.outbox import Change, InstanceChange, changes_write

logger = logging.getLogger(__name__)
BATCH = 1000  # instances told of per transaction


def delayed_instances(*, now=None):
    """Open instances past their state's ``expected_within`` not yet told of for this stay."""
    now = now or timezone.now()
    told = DelayNotice.objects.filter(instance=OuterRef("pk"), state_entered_at=OuterRef("state_entered_at"))
    for version_id in ModelVersion.objects.values_list("pk", flat=True):
        for state, limit in version_definition(version_id=version_id).expected_within.items():
            yield from (
                ProcessInstance.objects.filter(
                    version_id=version_id,
                    state=state,
                    status__in=[InstanceStatus.ACTIVE, InstanceStatus.IN_EXCEPTION],
                    state_entered_at__lt=now - limit,
                )
                .exclude(Exists(told))
                .select_related("model")
                .only(
                    "id",
                    "model__key",
                    "model_id",
                    "version_id",
                    "transaction_id",
                    "state",
                    "context",
                    "state_entered_at",
                )  # fmt: skip
                .iterator(chunk_size=BATCH)
            )


def delays_notify(*, now=None) -> int:
    """Tell of every instance newly delayed; returns how many."""
    now = now or timezone.now()
    found = list(delayed_instances(now=now))
    for start in range(0, len(found), BATCH):
        chunk = found[start : start + BATCH]
        with transaction.atomic():
            # The notice rows are the "told once" mark: a second run (or a racing one) inserts none.
            bulk_insert(
                DelayNotice,
                [{"instance_id": i.pk, "state": i.state, "state_entered_at": i.state_entered_at} for i in chunk],
                ignore_conflicts=True,
            )
            delayed = [
                InstanceChange(
                    instance,
                    Change(
                        ChangeKind.DELAYED,
                        instance.state,
                        instance.state,
                        milestone_of_states(instance.version_id).get(instance.state),
                    ),
                    instance.context,
                    {},
                )
                for instance in chunk
            ]
            changes_write(delayed, now=now)
            email_changes_write(delayed, now=now)
    if found:
        _alert_operators(found)
    return len(found)


def _alert_operators(instances) -> None:
    recipients = settings.STATUSTRACKER_DELAY_ALERT_EMAILS
    lines = [f"{i.model.key} · {i.transaction_id}: in {i.state} since {i.state_entered_at:%Y-%m-%d %H:%M} UTC"
             for i in instances[:200]]  # fmt: skip
    if len(instances) > 200:
        lines.append(f"… and {len(instances) - 200} more (the admin's instance list, filter “delayed”).")
    logger.warning("%d instances became delayed", len(instances))
    if recipients:
        send_mail(
            f"{len(instances)} request(s) delayed",
            "These requests have stayed in a state longer than expected:\n\n" + "\n".join(lines),
            None,
            recipients,
            fail_silently=True,
        )
