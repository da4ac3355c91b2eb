# Generated for the Kinesis consumer's shard leases.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ShardLease",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stream", models.CharField(max_length=128)),
                ("shard_id", models.CharField(max_length=128)),
                ("parent_shard_ids", models.JSONField(blank=True, default=list)),
                ("owner", models.CharField(blank=True, db_index=True, max_length=255)),
                ("pending_owner", models.CharField(blank=True, max_length=255)),
                ("lease_counter", models.BigIntegerField(default=0)),
                ("lease_expires_at", models.DateTimeField(blank=True, null=True)),
                ("checkpoint_sequence", models.CharField(blank=True, max_length=128)),
                ("checkpoint_sub_sequence", models.BigIntegerField(default=0)),
                (
                    "finished",
                    models.BooleanField(default=False, help_text="Read to its end (a closed parent shard)."),
                ),
                ("records_processed", models.BigIntegerField(default=0)),
                ("millis_behind_latest", models.BigIntegerField(blank=True, null=True)),
                ("records_per_second", models.FloatField(default=0.0)),
                ("last_checkpoint_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["stream", "shard_id"],
                "constraints": [
                    models.UniqueConstraint(fields=("stream", "shard_id"), name="unique_lease_per_shard")
                ],
            },
        ),
    ]
