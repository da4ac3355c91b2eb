"""Migrating in-flight instances to another version in the admin: the versions, the state of the target
version each state maps to (pre-filled where the keys match), a dry run of where the instances land,
then all of them or none (``instances_migrate_version``, one transaction).

The same screen serves the page of its own (a model and two of its versions, ``migration_page``) and
the instance list's action on the instances chosen there (``InstanceRepairMixin``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.db.models import Count, QuerySet
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from models_registry.models import ModelVersion, StatusModel
from tracking.admin.common import state_labels
from tracking.models import ProcessInstance
from tracking.operations.moves import (
    IN_FLIGHT,
    MigrationPlan,
    instances_migrate_version,
    instances_migration_plan,
    migration_candidates,
)

TEMPLATE = "admin/tracking/processinstance/migrate.html"


@dataclass(frozen=True)
class SourceState:
    key: str
    label: str
    count: int


class MappingForm(forms.Form):
    """For each state the instances are in, the target version's state it becomes; and why."""

    note = forms.CharField(
        max_length=400,
        required=False,
        help_text="Why; recorded in each instance's history.",
        widget=forms.TextInput(attrs={"size": 50}),
    )

    def __init__(self, data=None, *, sources: list[SourceState], target_labels: dict[str, str]):
        super().__init__(data)
        self.sources, self.target_labels = sources, target_labels
        choices = [("", "— choose a state —"), *target_labels.items()]
        for source in sources:
            self.fields[self.field_name(source.key)] = forms.ChoiceField(
                label=f"{source.label} becomes",
                choices=choices,
                initial=source.key if source.key in target_labels else "",
                error_messages={"required": "The target version has no such state: choose one."},
            )

    @staticmethod
    def field_name(key: str) -> str:
        return f"map-{key}"

    def mapping(self) -> dict[str, str]:
        return {source.key: self.cleaned_data[self.field_name(source.key)] for source in self.sources}

    def rows(self):
        """(source state, its select, whether the target lacks its key) for the mapping table."""
        return [
            (source, self[self.field_name(source.key)], source.key not in self.target_labels) for source in self.sources
        ]


class VersionMigration:
    """A migration being prepared: instances, a target version, the mapping and its dry run."""

    def __init__(self, *, instances: QuerySet[ProcessInstance], target: ModelVersion, data=None):
        self.instances, self.target = instances, target
        self.data = data
        unmapped = instances_migration_plan(instances=instances, version=target, state_mapping={})
        self.sources = _source_states(unmapped)
        # A form posted for another target version starts again from its pre-filled mapping.
        bound = data is not None and data.get("mapping_for") == str(target.number)
        self.form = MappingForm(data if bound else None, sources=self.sources, target_labels=state_labels(target.pk))
        self.plan: MigrationPlan | None = None
        if bound and self.form.is_valid():
            self.plan = instances_migration_plan(instances=instances, version=target, state_mapping=self.form.mapping())

    def fingerprint(self) -> str:
        """What the dry run shown was of: applying anything else shows its dry run first."""
        return json.dumps([self.target.number, sorted(self.form.mapping().items())])

    def apply(self, actor) -> int | None:
        """Migrate when the post applies the dry run that was shown; None: show the page again."""
        if self.plan is None or "_apply" not in self.data:
            return None
        note = self.form.cleaned_data["note"].strip()
        if self.data.get("dry_run_of") != self.fingerprint():
            self.form.add_error(None, "The mapping changed since the dry run: check this one, then migrate.")
        elif str(self.plan.total) != self.data.get("expected"):
            self.form.add_error(
                None,
                f"The instances changed since the dry run ({self.data.get('expected')} then, {self.plan.total} "
                "now): check this one, then migrate.",
            )
        elif not note:
            self.form.add_error("note", "Say why: the note is recorded in each instance's history.")
        else:
            candidates = migration_candidates(self.instances, version=self.target)
            try:
                return instances_migrate_version(
                    instance_ids=list(candidates.values_list("pk", flat=True)),
                    version=self.target,
                    state_mapping=self.form.mapping(),
                    actor=actor,
                    note=note,
                )
            except ValueError as error:
                self.form.add_error(None, f"Nothing was migrated: {error}.")
        return None

    def context(self) -> dict:
        labels = state_labels(self.target.pk)
        plan = self.plan
        return {
            "target": self.target,
            "form": self.form,
            "sources_total": sum(source.count for source in self.sources),
            "plan": plan,
            "landing": [(labels.get(key, key), count) for key, count in plan.landing().items()] if plan else [],
            "plan_moves": [
                (
                    f"v{m.from_version}",
                    state_labels(m.from_version_id).get(m.from_state, m.from_state),
                    labels.get(m.to_state, m.to_state),
                    m.count,
                )
                for m in plan.moves
            ]
            if plan
            else [],  # fmt: skip
            "fingerprint": self.fingerprint() if plan else "",
        }


def _source_states(plan: MigrationPlan) -> list[SourceState]:
    """The states the instances are in, across their versions, with the newest version's labels."""
    counts: dict[str, int] = {}
    labels: dict[str, str] = {}
    for move in plan.moves:  # oldest version first: newer labels win
        counts[move.from_state] = counts.get(move.from_state, 0) + move.count
        labels[move.from_state] = state_labels(move.from_version_id).get(move.from_state, move.from_state)
    return [SourceState(key, labels[key], counts[key]) for key in counts]


def migration_response(model_admin, request, *, migration: VersionMigration | None, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": "Migrate instances to another version",
            **(migration.context() if migration else {}),
            "migration": migration,
            **context,
        },
    )


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def migration_page(model_admin, request) -> TemplateResponse:
    """The page of its own: a model, the version its instances are on and the one they go to."""
    models = sorted(StatusModel.objects.filter(versions__isnull=False).distinct(), key=lambda m: m.name.lower())
    chosen = next((m for m in models if str(m.pk) == request.GET.get("model")), None)
    if chosen is None and len(models) == 1:
        chosen = models[0]
    context = {"models": models, "chosen_model": chosen, "chooser": True}
    if chosen is None:
        return migration_response(model_admin, request, migration=None, **context)

    versions = list(ModelVersion.objects.filter(model=chosen).order_by("number"))
    in_flight = dict(
        ProcessInstance.objects.filter(model=chosen, status__in=IN_FLIGHT)
        .values_list("version__number")
        .annotate(n=Count("id"))
        .order_by()
    )
    latest = versions[-1].number
    with_instances = [v.number for v in versions if in_flight.get(v.number) and v.number != latest]
    from_number = _number(request.GET.get("from")) or (with_instances[0] if with_instances else None)
    to_number = _number(request.GET.get("to")) or latest
    by_number = {v.number: v for v in versions}
    context.update(
        versions=[(v.number, in_flight.get(v.number, 0)) for v in versions],
        from_number=from_number,
        to_number=to_number,
    )
    source, target = by_number.get(from_number), by_number.get(to_number)
    if source is None or target is None:
        return migration_response(model_admin, request, migration=None, **context)
    if source == target:
        context["chooser_error"] = "Choose two different versions."
        return migration_response(model_admin, request, migration=None, **context)

    instances = ProcessInstance.objects.filter(model=chosen, version=source)
    migration = VersionMigration(instances=instances, target=target, data=request.POST or None)
    migrated = migration.apply(request.user)
    if migrated is not None:
        messages.success(
            request, f"Migrated {migrated} instances of {chosen.name} from v{source.number} to v{target.number}."
        )
        return redirect(f"{reverse('admin:tracking_processinstance_changelist')}?model__id__exact={chosen.pk}")
    return migration_response(model_admin, request, migration=migration, source=source, **context)
