"""``kinesis_stream``: create, describe or delete a Kinesis data stream."""

import json

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tracking.arrival.kinesis.client import make_client
from tracking.arrival.kinesis.streams import StreamError, stream_create, stream_delete, stream_describe


class Command(BaseCommand):
    help = (
        "Create, describe or delete a Kinesis data stream: `kinesis_stream create NAME --shards N`, "
        "`kinesis_stream describe NAME` (status and every shard with its parents), "
        "`kinesis_stream delete NAME`. The endpoint and region come from KINESIS_ENDPOINT_URL and "
        "AWS_DEFAULT_REGION, or the options."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("create", "describe", "delete"))
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--shards", type=int, default=1, help="Shard count for create (default 1).")
        parser.add_argument("--region", default=settings.AWS_DEFAULT_REGION)
        parser.add_argument("--endpoint-url", default=settings.KINESIS_ENDPOINT_URL)
        parser.add_argument("--json", action="store_true", help="describe: print JSON.")
        parser.add_argument("--no-wait", action="store_true", help="Do not wait for ACTIVE / deleted.")

    def handle(self, *args, action, name, shards, region, endpoint_url, json: bool = False, no_wait, **options):
        client = make_client(region=region, endpoint_url=endpoint_url)
        try:
            if action == "create":
                stream_create(client, name=name, shards=shards, wait=not no_wait)
                self.stdout.write(f"stream {name} created with {shards} shards")
            elif action == "delete":
                stream_delete(client, name=name, wait=not no_wait)
                self.stdout.write(f"stream {name} deleted")
            else:
                self._describe(client, name, as_json=json)
        except StreamError as exc:
            raise CommandError(str(exc)) from exc
        except BotoCoreError as exc:
            raise CommandError(f"cannot reach Kinesis: {exc}") from exc

    def _describe(self, client, name, *, as_json):
        description = stream_describe(client, name=name)
        if as_json:
            self.stdout.write(_json_dumps(description))
            return
        self.stdout.write(
            f"{description['name']}: {description['status']}, {description['open_shards']} open shards, "
            f"retention {description['retention_hours']} h"
        )
        for shard in description["shards"]:
            parents = f" from {' + '.join(shard['parents'])}" if shard["parents"] else ""
            self.stdout.write(f"  {shard['id']} {'open' if shard['open'] else 'closed'}{parents}")


def _json_dumps(value) -> str:
    return json.dumps(value, indent=2)
