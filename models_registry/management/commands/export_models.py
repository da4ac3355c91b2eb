"""``export_models``: print published model versions as YAML or JSON, in the canonical form."""

from django.core.management.base import BaseCommand, CommandError

from models_registry.selectors import model_version
from models_registry.services import dump_documents


class Command(BaseCommand):
    help = "Print the latest published version of status models as YAML (default) or JSON. No ids: all models."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", metavar="ID")
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args, ids, format, **options):
        from models_registry.selectors import model_list

        keys = ids or list(model_list().values_list("key", flat=True))
        documents = []
        for key in keys:
            version = model_version(key=key)
            if version is None:
                raise CommandError(f"no published model {key!r}")
            documents.append(version.document)
        if documents:
            self.stdout.write(dump_documents(documents, fmt=format), ending="")
