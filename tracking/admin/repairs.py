"""Repairs of many instances from their list: move them to a state, migrate them to another version,
retry their parked events, each behind a confirmation page that says what will happen; and the
migration page of its own (tracking/admin/migrations_page.py), linked from the list.

Every repair needs ``tracking.change_processinstance``: without it the actions are not offered, the
page answers 403, and a forged post of an action changes nothing.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.urls import path, reverse

from models_registry.models import ModelVersion
from tracking.admin.common import state_labels
from tracking.admin.confirmation import ConfirmForm, NoteForm, confirmation_page, confirmed_data, selection_fields
from tracking.admin.migrations_page import VersionMigration, migration_page, migration_response
from tracking.models import EventStatus, InboxEvent
from tracking.operations.moves import common_states, instances_move_manually, move_candidates
from tracking.operations.parked_events import instances_retry_parked


class MoveManyForm(NoteForm):
    target = forms.ChoiceField(label="Move to state")
    field_order = ["target", "note"]

    def __init__(self, data=None, *, states: list[tuple[str, str]]):
        super().__init__(data)
        self.fields["target"].choices = states


class InstanceRepairMixin:
    """Bulk repairs on the instance list and the migration page, for ``ProcessInstanceAdmin``."""

    repair_actions = ("move_to_state", "migrate_to_version", "retry_parked_events")

    def has_repair_permission(self, request) -> bool:
        return request.user.has_perm("tracking.change_processinstance")

    def get_urls(self):
        return [
            path("migrate/", self.admin_site.admin_view(self.migration_view), name="tracking_processinstance_migrate"),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        # Added here rather than in ``actions``, which the admin class sets for its own.
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET or not self.has_repair_permission(request):
            return actions
        for name in self.repair_actions:
            func, name, description = self.get_action(name)
            actions[name] = (func, name, description)
        return actions

    def changelist_view(self, request, extra_context=None):
        if self.has_repair_permission(request):
            extra_context = {**(extra_context or {}), "migrate_url": reverse("admin:tracking_processinstance_migrate")}
        return super().changelist_view(request, extra_context)

    def migration_view(self, request):
        if not self.has_repair_permission(request):
            raise PermissionDenied
        return migration_page(self, request)

    def _refused(self, request) -> bool:
        if self.has_repair_permission(request):
            return False
        self.message_user(request, "You may not repair instances.", messages.ERROR)
        return True

    @staticmethod
    def _labels(queryset) -> dict[str, str]:
        version_id = queryset.filter(version__isnull=False).values_list("version_id", flat=True).first()
        return state_labels(version_id)

    @admin.action(description="Move the selected instances to a state…", permissions=["repair"])
    def move_to_state(self, request, queryset):
        if self._refused(request):
            return None
        labels = self._labels(queryset)
        states = [(key, labels.get(key, key)) for key in common_states(queryset)]
        if not states:
            self.message_user(request, "None of the instances chosen has started: none can move.", messages.WARNING)
            return None
        form = MoveManyForm(confirmed_data(request), states=states)
        if form.is_valid():
            target = form.cleaned_data["target"]
            try:
                moved = instances_move_manually(
                    instance_ids=list(move_candidates(queryset, target=target).values_list("pk", flat=True)),
                    target=target,
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
            except ValueError as error:
                form.add_error("target", f"Nothing was moved: {error}.")
            else:
                self.message_user(
                    request, f"Moved {moved} instances to {labels.get(target, target)}.", messages.SUCCESS
                )
                return None
        now = move_candidates(queryset).values_list("state").annotate(n=Count("id")).order_by("state")
        return confirmation_page(
            self,
            request,
            queryset,
            title="Move instances to a state",
            intro=(
                "Each instance chosen moves to the state you choose, a manual transition recorded in its "
                "history with your name and the note; parked events are tried again afterwards. All move "
                "or none. Instances already in that state, and those not started yet, are left alone. "
                "Only the states every instance's version has are offered."
            ),
            plan_headers=("State now", "Instances"),
            plan_rows=[(labels.get(state, state), n) for state, n in now],
            form=form,
            submit="Move them",
        )

    @admin.action(description="Migrate the selected instances to another version…", permissions=["repair"])
    def migrate_to_version(self, request, queryset):
        if self._refused(request):
            return None
        model_ids = list(queryset.values_list("model_id", flat=True).distinct().order_by()[:2])
        if len(model_ids) != 1:
            self.message_user(request, "Choose instances of one model to migrate them.", messages.WARNING)
            return None
        versions = list(ModelVersion.objects.filter(model_id=model_ids[0]).order_by("-number"))
        wanted = request.POST.get("to")
        target = next((v for v in versions if str(v.number) == wanted), versions[0])
        migration = VersionMigration(instances=queryset, target=target, data=confirmed_data(request))
        migrated = migration.apply(request.user)
        if migrated is not None:
            self.message_user(request, f"Migrated {migrated} instances to v{target.number}.", messages.SUCCESS)
            return None
        return migration_response(
            self,
            request,
            migration=migration,
            target_numbers=[v.number for v in versions],
            hidden=selection_fields(request, queryset),
            back_url=request.get_full_path(),
        )

    @admin.action(description="Retry the parked events of the selected instances…", permissions=["repair"])
    def retry_parked_events(self, request, queryset):
        if self._refused(request):
            return None
        parked = InboxEvent.objects.filter(instance__in=queryset, status=EventStatus.PARKED)
        form = ConfirmForm(confirmed_data(request))
        if form.is_valid():
            count = instances_retry_parked(instance_ids=queryset.values_list("pk", flat=True))
            self.message_user(request, f"{count} parked events will be offered again.", messages.SUCCESS)
            return None
        by_type = parked.values_list("event_type").annotate(n=Count("id")).order_by("event_type")
        return confirmation_page(
            self,
            request,
            queryset,
            title="Retry parked events",
            intro=(
                "The parked events of the instances chosen become pending and are offered to their "
                "instances again, in arrival order with their other open events; one that still cannot "
                "apply is parked again (or ignored when it never can)."
            ),
            plan_headers=("Event type", "Parked events"),
            plan_rows=list(by_type),
            form=form,
            submit="Retry them",
        )
