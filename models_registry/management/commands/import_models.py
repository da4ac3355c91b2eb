"""``import_models``: validate YAML/JSON model files and publish each as a new version."""

from django.core.management.base import BaseCommand, CommandError

from models_registry.definition import DefinitionError
from models_registry.services import model_import, parse_documents


class Command(BaseCommand):
    help = (
        "Import status models from YAML or JSON files (one or more documents per file). Each valid "
        "document becomes a new published version unless it equals the model's latest version. "
        "Nothing is imported from a file that holds an invalid document."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        failed = False
        for filename in files:
            try:
                with open(filename, encoding="utf-8") as handle:
                    documents = parse_documents(handle.read(), filename=filename)
            except (OSError, ValueError) as exc:
                raise CommandError(f"{filename}: cannot read: {exc}") from exc
            for index, document in enumerate(documents):
                try:
                    version, created = model_import(document=document)
                except DefinitionError as exc:
                    failed = True
                    self.stderr.write(f"{filename}: document {index + 1} is invalid:")
                    for path, messages in exc.errors.items():
                        self.stderr.write(f"  {path or '(document)'}: {' '.join(messages)}")
                    continue
                verb = "published" if created else "unchanged,"
                self.stdout.write(f"{version.model.key}: {verb} version {version.number}")
        if failed:
            raise CommandError("some documents were invalid and were not imported")
