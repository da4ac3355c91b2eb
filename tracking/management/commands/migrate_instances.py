"""``migrate_instances``: move in-flight instances to another version of their model."""

from django.core.management.base import BaseCommand, CommandError

from models_registry.selectors import model_version
from tracking.models import InstanceStatus, ProcessInstance
from tracking.operations.moves import instances_migrate_version


class Command(BaseCommand):
    help = (
        "Move the in-flight instances of a model to another published version (default: the latest). "
        "States the target version lacks must be mapped with --map OLD=NEW; each move is recorded in "
        "the instance's history. Finished instances (succeeded, failed) are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("model_id")
        parser.add_argument("--to-version", type=int, default=None)
        parser.add_argument("--map", action="append", default=[], metavar="OLD=NEW")

    def handle(self, *args, model_id, to_version, map, **options):
        version = model_version(key=model_id, number=to_version)
        if version is None:
            raise CommandError(f"no published version {to_version or '(latest)'} of {model_id!r}")
        try:
            mapping = dict(item.split("=", 1) for item in map)
        except ValueError as exc:
            raise CommandError("--map takes OLD=NEW") from exc
        instance_ids = list(
            ProcessInstance.objects.filter(
                model=version.model, status__in=[InstanceStatus.ACTIVE, InstanceStatus.IN_EXCEPTION]
            )
            .exclude(version=version)
            .values_list("pk", flat=True)
        )
        try:
            moved = instances_migrate_version(instance_ids=instance_ids, version=version, state_mapping=mapping)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{moved} instances of {model_id} moved to version {version.number}")
