"""A GIN index on instances' context, for the admin's search by a context value (an email, a
tracking number): ``context @> {"field": "value"}``. PostgreSQL only; SQLite searches without it.
Its cost on the apply path is measured in bench/RESULTS.md ("Context index")."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS instance_context ON tracking_processinstance "
    "USING gin (context jsonb_path_ops)"
)
DROP = "DROP INDEX IF EXISTS instance_context"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("tracking", "0007_history_context_updates")]

    operations = [migrations.RunPython(create, drop)]
