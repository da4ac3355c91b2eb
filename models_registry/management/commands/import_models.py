"""``import_models``: validate YAML/JSON model files and publish each as a new version."""

from django.core.management.base import BaseCommand, CommandError

from models_registry.definition import DefinitionError
from models_registry.documents import ModelFileSyntaxError, parse_model_file
from models_registry.services import model_import


class Command(BaseCommand):
    help = (
        "Import status models from YAML or JSON files (one or more documents per file). Each valid "
        "document becomes a new published version unless it equals the model's latest version. "
        "Nothing is imported from a file that holds an invalid document, and nothing at all when a "
        "file cannot be read or is not well-formed YAML or JSON: that is said in one line, "
        "FILE:LINE:COLUMN: what is wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        # Every file is read before any is imported, so that a typo in the last one leaves the
        # models of the others as they were.
        parsed = [(filename, self._documents(filename)) for filename in files]
        failed = False
        for filename, documents in parsed:
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

    @staticmethod
    def _documents(filename: str) -> list:
        try:
            with open(filename, "rb") as handle:
                content = handle.read()
        except OSError as exc:
            raise CommandError(f"{filename}: cannot read: {exc.strerror or exc}") from exc
        try:
            return parse_model_file(content, filename=filename)
        except ModelFileSyntaxError as exc:
            raise CommandError(str(exc)) from exc
