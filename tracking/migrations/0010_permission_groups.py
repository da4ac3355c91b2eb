"""Three groups for the admin's people: definition editors, operators and viewers (docs/operators.md).

Rules rather than lists, so that the permissions of the apps' actions (replaying dead letters, ...)
belong to the group they fit; run again (it only adds), it grants what a later migration adds.
"""

from django.db import migrations
from django.db.models import Q

EDITORS, OPERATORS, VIEWERS = "Definition editors", "Operators", "Viewers"


def _rules():
    viewing = Q(content_type__app_label__in=["tracking", "models_registry"], codename__startswith="view_")
    return {
        EDITORS: Q(
            content_type__app_label="models_registry",
            codename__regex=r"^(add_|change_|view_)|^edit_definitions$",
        ),
        # Changing tracking's rows is what their actions need (moves, migrations, retries), and the
        # custom permissions are actions too (replay, discard); nothing is added or deleted by hand.
        OPERATORS: viewing
        | (Q(content_type__app_label="tracking") & ~Q(codename__startswith="add_") & ~Q(codename__startswith="delete_")),
        VIEWERS: viewing,
    }


def groups_create(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are otherwise created after every migration has run (post_migrate): on a new
    # database none would exist yet.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, rule in _rules().items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(rule))


def groups_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[EDITORS, OPERATORS, VIEWERS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("models_registry", "0002_edit_definitions_permission"),
        ("tracking", "0009_dead_letter_replay_and_discard"),
    ]

    operations = [migrations.RunPython(groups_create, groups_delete)]
