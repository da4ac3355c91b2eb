"""The three groups get the permissions that came after them (webhooks, notifications, customer
email): the same rules as 0010_permission_groups, run again; it only adds."""

from importlib import import_module

from django.db import migrations

groups = import_module("tracking.migrations.0010_permission_groups")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0014_lighter_outbox")]

    operations = [migrations.RunPython(groups.groups_create, migrations.RunPython.noop)]
