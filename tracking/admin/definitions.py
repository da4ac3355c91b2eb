"""The registry's admin pages with what only this app can read: "try it" with the workers' engine,
the customer page preview and instance counts in the designer; counts per state and per version on
the version pages. These subclasses are registered in place of ``models_registry``'s, which never
imports ``tracking`` (the way a project extends ``UserAdmin``)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.urls import NoReverseMatch, path, reverse

from models_registry.admin import ModelVersionAdmin, StatusModelAdmin
from models_registry.definition import Definition, DefinitionError
from models_registry.designer import describe_problems
from models_registry.models import ModelVersion, StatusModel
from models_registry.selectors import model_version, version_definition
from models_registry.validation import document_validate
from tracking.apply.trial import event_try
from tracking.arrival.trial_event import trial_envelope
from tracking.models import ProcessInstance
from tracking.progress.selectors import started_instances, version_state_counts


class TrialRefused(Exception):
    def __init__(self, detail: str, problems: list[str] = ()):
        super().__init__(detail)
        self.detail, self.problems = detail, list(problems)


def _json_field(raw: str, what: str, *, default):
    if not raw.strip():
        return default
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise TrialRefused(f"The {what} is not valid JSON: {error}.") from None
    if not isinstance(value, dict):
        raise TrialRefused(f"The {what} must be a JSON object, in braces {{…}}.")
    return value


class StatusModelWithInstancesAdmin(StatusModelAdmin):
    def get_urls(self):
        return [
            path(
                "<path:object_id>/try/",
                self.admin_site.admin_view(self.try_view),
                name="models_registry_statusmodel_try",
            ),
            *super().get_urls(),
        ]

    def try_url(self, obj) -> str | None:
        return reverse("admin:models_registry_statusmodel_try", args=[obj.pk])

    def preview_url(self, obj) -> str | None:
        try:
            return reverse("progress-preview", args=[obj.key])
        except NoReverseMatch:
            return None

    def version_instance_counts(self, obj) -> dict[int, int]:
        rows = ProcessInstance.objects.filter(version__model=obj).values_list("version").annotate(n=Count("id"))
        return dict(rows.order_by())

    def try_view(self, request, object_id):
        """What an event would do on the form's document or a published version (JSON)."""
        status_model = self.get_object(request, object_id)
        if status_model is None:
            return JsonResponse({"detail": "No such model."}, status=404)
        if not self.has_view_or_change_permission(request, status_model):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"detail": "POST the event to try."}, status=405)
        try:
            answer = self._try(status_model, request.POST)
        except TrialRefused as refused:
            return JsonResponse({"detail": refused.detail, "problems": refused.problems}, status=400)
        return JsonResponse(answer)

    @staticmethod
    def _definition(status_model: StatusModel, posted) -> Definition:
        if "document" in posted:
            document = _json_field(posted["document"], "document", default={})
            document["id"] = status_model.key
            try:
                return Definition.from_document(document_validate(document))
            except DefinitionError as error:
                problems = [problem.text for problem in describe_problems(document, error.errors)]
                raise TrialRefused("The form has problems; fix them to try it.", problems) from None
        try:
            number = int(posted.get("version", ""))
        except ValueError:
            raise TrialRefused("Choose the form or a published version to try.") from None
        version = model_version(key=status_model.key, number=number)
        if version is None:
            raise TrialRefused(f"{status_model.key} has no version {number}.")
        return version_definition(version_id=version.pk)

    def _try(self, status_model: StatusModel, posted) -> dict:
        definition = self._definition(status_model, posted)
        state = posted.get("state", "")
        if state and state not in definition.kinds:
            raise TrialRefused(f"{state!r} is not a state of the model tried.")
        context = _json_field(posted.get("context", ""), "context", default={})
        if context and not state:
            raise TrialRefused("An instance that does not exist yet has no context: choose a state, or no context.")
        event = _json_field(posted.get("event", ""), "event", default=None)
        if event is None:
            raise TrialRefused('Give the event to try, e.g. {"event_type": "payment.captured"}.')
        errors: dict[str, list[str]] = {}
        envelope = trial_envelope(status_model.key, event, errors)
        if envelope is None:
            raise TrialRefused(
                "The event is not valid.", [f"{path}: {' '.join(messages)}" for path, messages in errors.items()]
            )
        trial = event_try(definition=definition, state=state, context=context, envelope=envelope)
        return {
            "outcome": trial.outcome,
            "reason": trial.reason,
            "from_state": trial.from_state,
            "to_state": trial.to_state,
            "steps": [{"from_state": step.from_state, "to_state": step.to_state} for step in trial.steps],
            "context_updates": trial.context_updates,
            "context": trial.context,
            "waits_for": trial.waits_for,
        }


class ModelVersionWithInstancesAdmin(ModelVersionAdmin):
    def state_counts(self, obj) -> dict[str, int]:
        return version_state_counts(version_id=obj.pk)

    def instance_count(self):
        # One subquery per row in the list's single query, not one query per row.
        on_version = started_instances().filter(version=OuterRef("pk")).order_by()
        return Coalesce(Subquery(on_version.values("version").annotate(n=Count("id")).values("n")), 0)


for registered, replacement in (
    (StatusModel, StatusModelWithInstancesAdmin),
    (ModelVersion, ModelVersionWithInstancesAdmin),
):
    admin.site.unregister(registered)
    admin.site.register(registered, replacement)
