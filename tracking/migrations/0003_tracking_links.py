# Customer tracking links: a per-instance random value that signed links carry (replacing it
# revokes them), and an index for the completion estimate. Existing rows each get their own
# value before the column becomes unique.

from django.db import migrations, models

import tracking.models


def fill_link_nonces(apps, schema_editor):
    ProcessInstance = apps.get_model("tracking", "ProcessInstance")
    batch = []
    for instance in ProcessInstance.objects.filter(link_nonce__isnull=True).only("pk").iterator(chunk_size=2000):
        instance.link_nonce = tracking.models.new_link_nonce()
        batch.append(instance)
        if len(batch) >= 2000:
            ProcessInstance.objects.bulk_update(batch, ["link_nonce"])
            batch = []
    ProcessInstance.objects.bulk_update(batch, ["link_nonce"])


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_shard_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="processinstance",
            name="link_nonce",
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(fill_link_nonces, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="processinstance",
            name="link_nonce",
            field=models.CharField(
                default=tracking.models.new_link_nonce, editable=False, max_length=32, unique=True
            ),
        ),
        migrations.AddIndex(
            model_name="processinstance",
            index=models.Index(
                condition=models.Q(("status", "succeeded")),
                fields=["version", "state_entered_at"],
                name="instance_succeeded_recent",
            ),
        ),
    ]
