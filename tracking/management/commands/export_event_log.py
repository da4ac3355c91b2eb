"""``export_event_log``: a model's instances' histories as an event log for process-mining tools."""

from django.core.management.base import BaseCommand, CommandError

from tracking.insights.event_log import FORMATS
from tracking.insights.selectors import dashboard_scope, event_log_chunks


class Command(BaseCommand):
    help = (
        "Write the histories of a model's started instances as an event log: one case per transaction, one "
        "event per transition (the activity is the state entered). Formats: xes (IEEE XES), ocel (OCEL 2.0 "
        "JSON), csv. To standard output unless --output is given; streamed, so any number of instances fits."
    )

    def add_arguments(self, parser):
        parser.add_argument("model_id")
        parser.add_argument("--format", choices=list(FORMATS), default="xes")
        parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")
        parser.add_argument("--model-version", type=int, metavar="N", help="only instances of version N")
        parser.add_argument("--window", type=int, metavar="DAYS", help="only instances started in the last DAYS days")

    def handle(self, *args, model_id, format, output, model_version, window, **options):
        scope = dashboard_scope(model_key=model_id, version=model_version, window_days=window)
        if scope is None:
            raise CommandError(f"no model {model_id!r}" + (f" with version {model_version}" if model_version else ""))
        chunks = event_log_chunks(scope, format)
        if output:
            with open(output, "w", encoding="utf-8", newline="") as file:
                file.writelines(chunks)
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            self.stdout.flush()
