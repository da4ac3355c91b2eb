"""The draft becomes one document column: the designer edits the whole document, and a draft
with errors is kept as it is. Existing drafts are copied from their rows."""

from django.db import migrations, models


def rows_to_document(apps, schema_editor):
    StatusModel = apps.get_model("models_registry", "StatusModel")
    for status_model in StatusModel.objects.all():
        states = []
        for row in status_model.states.order_by("position", "id"):
            state = {"key": row.key, "label": row.label}
            if row.description:
                state["description"] = row.description
            state["kind"] = row.kind
            if row.expected_within:
                state["expected_within"] = row.expected_within
            states.append(state)
        transitions = []
        for row in status_model.transitions.order_by("position", "id"):
            sources = row.from_states.strip()
            transition = {
                "event": row.event,
                "from": "*" if sources == "*" else [s.strip() for s in sources.split(",") if s.strip()],
                "to": row.to_state,
            }
            if row.when:
                transition["when"] = row.when
            if row.set_fields:
                transition["set"] = row.set_fields
            transitions.append(transition)
        status_model.draft = {
            "id": status_model.key,
            "name": status_model.name,
            "description": status_model.description,
            "handler": status_model.handler,
            "initial_state": status_model.initial_state,
            "start_events": status_model.start_events,
            "park_ttl": status_model.park_ttl,
            "states": states,
            "transitions": transitions,
            "milestones": status_model.milestones,
            "display": status_model.display,
        }
        status_model.save(update_fields=["draft"])


class Migration(migrations.Migration):
    dependencies = [("models_registry", "0002_edit_definitions_permission")]

    operations = [
        migrations.AddField(
            model_name="statusmodel",
            name="draft",
            field=models.JSONField(blank=True, default=dict, help_text="The status model document being edited."),
        ),
        migrations.RunPython(rows_to_document, migrations.RunPython.noop),
        migrations.DeleteModel(name="StateDefinition"),
        migrations.DeleteModel(name="TransitionDefinition"),
        *[
            migrations.RemoveField(model_name="statusmodel", name=name)
            for name in (
                "name", "description", "handler", "initial_state", "start_events", "park_ttl", "milestones", "display",
            )
        ],  # fmt: skip
    ]
