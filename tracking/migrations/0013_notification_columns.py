"""Notifications keep the change as columns and make their body when sent: cheaper for the apply
to write than a whole JSON payload, and no random id to make (the id is the row's number)."""

from django.db import migrations, models


def payload_to_columns(apps, schema_editor):
    Notification = apps.get_model("tracking", "Notification")
    for notification in Notification.objects.select_related("instance").iterator():
        data = notification.payload.get("data", {})
        notification.version_id = notification.instance.version_id or 0
        notification.transaction_id = data.get("transaction_id") or notification.instance.transaction_id
        notification.from_state = data.get("from_state") or ""
        notification.to_state = data.get("to_state") or notification.instance.state
        notification.event_id = data.get("event_id") or ""
        notification.occurred_at = data.get("occurred_at") or ""
        notification.context = data.get("context") or {}
        notification.save()


class Migration(migrations.Migration):
    dependencies = [("tracking", "0012_customer_email")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="version_id",
            field=models.BigIntegerField(default=0, help_text="The version whose states the change names."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="notification",
            name="transaction_id",
            field=models.CharField(default="", max_length=200),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="notification",
            name="from_state",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="notification",
            name="to_state",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="notification",
            name="event_id",
            field=models.CharField(blank=True, help_text="The event that caused it, if one did.", max_length=128),
        ),
        migrations.AddField(
            model_name="notification",
            name="occurred_at",
            field=models.CharField(blank=True, help_text="When that event happened, as it said.", max_length=40),
        ),
        migrations.AddField(
            model_name="notification",
            name="context",
            field=models.JSONField(blank=True, default=dict, help_text="The context fields the subscription chose."),
        ),
        migrations.RunPython(payload_to_columns, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="notification", name="unique_notification_message_id"),
        migrations.RemoveField(model_name="notification", name="message_id"),
        migrations.RemoveField(model_name="notification", name="payload"),
    ]
