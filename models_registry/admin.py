"""Admin for businesses: design a model's draft with controls and a live diagram, publish it, and
read its published versions."""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from models_registry.admin_files import ModelFileAdminMixin, VersionFilesAdminMixin
from models_registry.definition import DEFAULT_PARK_TTL, STATE_KINDS, DefinitionError, canonical_order
from models_registry.designer import describe_problems, draft_report, handler_catalogue_data, problem_count
from models_registry.diagram import model_diagram
from models_registry.models import ModelVersion, StatusModel
from models_registry.services import (
    draft_discard,
    draft_document,
    draft_errors,
    draft_save,
    dump_documents,
    model_publish,
)


def _report(request, status_model, error: DefinitionError) -> None:
    problems = describe_problems(draft_document(status_model=status_model), error.errors)
    messages.error(request, f"{status_model.key} was not published; fix these problems of the draft:")
    for problem in problems:
        messages.error(request, problem.text)


def new_model_skeleton() -> dict:
    """What "Add status model" starts from: three states and the two transitions between them, to
    rename and extend rather than to type from nothing."""
    return {
        "id": "",
        "name": "",
        "description": "",
        "handler": "declarative",
        "initial_state": "received",
        "start_events": [],
        "park_ttl": DEFAULT_PARK_TTL,
        "states": [
            {"key": "received", "label": "Received", "kind": "step"},
            {"key": "in_progress", "label": "In progress", "kind": "step"},
            {"key": "done", "label": "Done", "kind": "success"},
        ],
        "transitions": [
            {"event": "work.started", "from": ["received"], "to": "in_progress"},
            {"event": "work.completed", "from": ["in_progress"], "to": "done"},
        ],
        "milestones": [],
        "display": [],
    }


# Short enough for a select on a phone; the diagram's legend says more.
DESIGNER_KIND_TEXT = {
    "step": "step",
    "success": "success (ends it)",
    "failure": "failure (ends it)",
    "exception": "exception (a detour)",
}


class DraftPostError(Exception):
    """The designer's form could not be read (it is written by the page's script, so rarely)."""


@admin.register(StatusModel)
class StatusModelAdmin(ModelFileAdminMixin, admin.ModelAdmin):
    """The designer: one page that edits a model's draft with controls, draws it, tries it and
    publishes it (``models_registry.designer`` says what is wrong in words).

    ``tracking.admin`` registers a subclass that adds what needs instances: trying an event with the
    workers' engine, the customer page preview and instance counts.
    """

    list_display = ["key", "model_name", "latest_version", "draft_status", "queue", "updated_at"]
    search_fields = ["key"]
    actions = ["publish_selected"]
    designer_template = "admin/models_registry/statusmodel/designer.html"

    class Media:
        css = {"all": ["models_registry/diagram.css", "models_registry/designer.css"]}
        js = ["vendor/viz-global-3.31.0.js", "models_registry/diagram.js", "models_registry/designer.js"]

    @admin.display(description="name")
    def model_name(self, obj):
        return obj.name

    @admin.display(description="latest version")
    def latest_version(self, obj):
        version = obj.versions.order_by("-number").first()
        return version.number if version else "none yet"

    @admin.display(description="draft")
    def draft_status(self, obj):
        latest = obj.versions.order_by("-number").first()
        if latest is not None and canonical_order(latest.document) == draft_document(status_model=obj):
            return "same as the latest version"
        problems = problem_count(draft_errors(draft_document(status_model=obj)))
        if problems:
            return f"unpublished changes, {problems} to fix" if latest else f"{problems} to fix"
        return "unpublished changes, ready" if latest else "ready to publish"

    # Hooks for tracking.admin: None hides what this app cannot know.
    def try_url(self, obj) -> str | None:
        return None

    def preview_url(self, obj) -> str | None:
        return None

    def version_instance_counts(self, obj) -> dict[int, int] | None:
        return None

    def get_urls(self):
        check = self.admin_site.admin_view(self.check_view)
        return [
            path("check/", check, name="models_registry_statusmodel_check"),
            path("<path:object_id>/check/", check, name="models_registry_statusmodel_check_draft"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return self.designer_view(request, None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.designer_view(request, object_id)

    def _posted_document(self, request) -> dict:
        try:
            document = json.loads(request.POST.get("document", ""))
        except ValueError:
            raise DraftPostError("The form could not be read; nothing was saved. Reload the page.") from None
        if not isinstance(document, dict):
            raise DraftPostError("The form could not be read; nothing was saved. Reload the page.")
        return document

    def check_view(self, request, object_id=None):
        """The designer's live reading of the form: problems, diagram and changes, as JSON."""
        status_model = self.get_object(request, object_id) if object_id else None
        if request.method != "POST":
            return JsonResponse({"detail": "POST the document."}, status=405)
        if not (
            self.has_add_permission(request)
            if status_model is None
            else self.has_view_or_change_permission(request, status_model)
        ):
            raise PermissionDenied
        try:
            document = self._posted_document(request)
        except DraftPostError as error:
            return JsonResponse({"detail": str(error)}, status=400)
        if status_model is not None:
            document["id"] = status_model.key
        return JsonResponse(draft_report(document, published=self._published(status_model)))

    @staticmethod
    def _published(status_model) -> dict | None:
        if status_model is None:
            return None
        latest = status_model.versions.order_by("-number").first()
        return canonical_order(latest.document) if latest else None

    def designer_view(self, request, object_id):
        status_model = None
        if object_id is not None:
            status_model = self.get_object(request, unquote(object_id))
            if status_model is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
            if not self.has_view_or_change_permission(request, status_model):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        editable = (
            self.has_add_permission(request)
            if status_model is None
            else self.has_change_permission(request, status_model)
        )

        document = draft_document(status_model=status_model) if status_model else new_model_skeleton()
        queue = status_model.queue if status_model else ""
        if request.method == "POST":
            if not editable:
                raise PermissionDenied
            try:
                document = self._posted_document(request)
            except DraftPostError as error:
                messages.error(request, str(error))
                return HttpResponseRedirect(request.path)
            queue = request.POST.get("queue", "").strip()[:100]
            saved = self._designer_action(request, status_model, document, queue)
            if saved is not None:
                return HttpResponseRedirect(reverse("admin:models_registry_statusmodel_change", args=[saved.pk]))
            # Not saved (a new model's id is missing or taken): the form comes back as it was sent.

        versions = list(status_model.versions.select_related("published_by")) if status_model else []
        counts = self.version_instance_counts(status_model) if status_model else None
        data = {
            "document": document,
            "queue": queue,
            "is_new": status_model is None,
            "editable": editable,
            "kinds": [{"key": kind, "text": DESIGNER_KIND_TEXT[kind]} for kind in STATE_KINDS],
            "handlers": handler_catalogue_data(),
            "latest_version": versions[0].number if versions else None,
            "urls": {
                "check": reverse(
                    "admin:models_registry_statusmodel_check_draft"
                    if status_model
                    else "admin:models_registry_statusmodel_check",
                    args=[status_model.pk] if status_model else [],
                ),
                "try": self.try_url(status_model) if status_model else None,
                "preview": self.preview_url(status_model) if status_model else None,
            },
            "report": draft_report(document, published=self._published(status_model)),
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": f"Design {status_model.key}" if status_model else "Design a new status model",
            "subtitle": None,
            "original": status_model,
            "designer": data,
            "versions": [
                {
                    "version": version,
                    "instances": None if counts is None else counts.get(version.pk, 0),
                    "url": reverse("admin:models_registry_modelversion_change", args=[version.pk]),
                }
                for version in versions
            ],
            "media": self.media,
            "has_view_permission": True,
            "has_change_permission": editable,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.designer_template, context)

    def _designer_action(self, request, status_model, document: dict, queue: str):
        """Save, publish or discard as the button pressed says; returns the model, or None when
        nothing could be saved."""
        if "_discard" in request.POST and status_model is not None:
            try:
                version = draft_discard(status_model=status_model)
            except ModelVersion.DoesNotExist:
                messages.error(request, "There is no published version to go back to; the draft is unchanged.")
            else:
                messages.success(request, f"The draft was discarded: it is version {version.number} again.")
            return status_model
        try:
            status_model = draft_save(document=document, status_model=status_model)
        except DefinitionError as error:
            for problem in describe_problems(document, error.errors):
                messages.error(request, f"Not saved. {problem.text}")
            return None
        if status_model.queue != queue:
            status_model.queue = queue
            status_model.save(update_fields=["queue", "updated_at"])
        if "_publish" in request.POST:
            self._publish(request, status_model)
        else:
            problems = problem_count(draft_errors(draft_document(status_model=status_model)))
            if problems:
                messages.warning(
                    request,
                    f"Draft saved. It has {problems} problem{'s' if problems != 1 else ''} to fix before it can be "
                    "published; each is shown where it is.",
                )
            else:
                messages.success(request, "Draft saved. It is ready to publish.")
        return status_model

    def _publish(self, request, status_model) -> bool:
        try:
            version, created = model_publish(status_model=status_model, user=request.user)
        except DefinitionError as error:
            _report(request, status_model, error)
            return False
        if created:
            messages.success(request, f"Published {status_model.key} version {version.number}.")
        else:
            messages.info(
                request, f"{status_model.key}: the draft equals version {version.number}; nothing to publish."
            )
        return True

    @admin.action(description="Publish the drafts of the selected models")
    def publish_selected(self, request, queryset):
        for status_model in queryset:
            self._publish(request, status_model)


@admin.register(ModelVersion)
class ModelVersionAdmin(VersionFilesAdminMixin, admin.ModelAdmin):
    """Published versions are immutable: shown, never edited, with the diagram of their states, a
    download and the diff against any other version (``admin_files``).

    ``tracking.admin`` registers a subclass in its place that adds how many instances are on each
    version and in each state now: this app never imports ``tracking``.
    """

    list_display = ["model", "number", "published_at", "published_by", "instances", "compare"]
    list_display_links = ["model", "number"]
    list_filter = ["model"]
    list_select_related = ["model", "published_by"]
    readonly_fields = ["model", "number", "published_at", "published_by", "document_yaml"]
    exclude = ["document"]
    change_form_template = "admin/models_registry/modelversion/change_form.html"

    class Media:
        css = {"all": ["models_registry/diagram.css"]}
        js = ["vendor/viz-global-3.31.0.js", "models_registry/diagram.js"]

    def state_counts(self, obj) -> dict[str, int] | None:
        """Instances in each state of the version now; None: the page shows no counts."""
        return None

    def instance_count(self):
        """An expression for the number of instances on a version now, annotated on the list's
        rows; None: the list has no such column."""
        return None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        count = self.instance_count()
        return queryset if count is None else queryset.annotate(instance_count=count)

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self.instance_count() is not None else [name for name in shown if name != "instances"]

    @admin.display(description="instances on it now", ordering="instance_count")
    def instances(self, obj):
        return getattr(obj, "instance_count", None)

    @admin.display(description="changes")
    def compare(self, obj):
        return format_html('<a href="{}">Compare with…</a>', self.diff_url(obj))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        if version is not None:
            extra_context = {
                **(extra_context or {}),
                "diagram": model_diagram(version.document, counts=self.state_counts(version)),
                "diff_url": self.diff_url(version),
                "export_url": reverse("admin:models_registry_modelversion_export", args=[version.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="document")
    def document_yaml(self, obj):
        # Wrapped, so that a long line never runs off a narrow screen.
        return format_html(
            '<pre style="white-space: pre-wrap; overflow-wrap: anywhere">{}</pre>',
            dump_documents([obj.document], fmt="yaml"),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
