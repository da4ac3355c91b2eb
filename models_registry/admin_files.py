"""Model files in the admin: import a YAML or JSON file as a model's draft, download a version or
the draft as a file, and read what changed between two versions.

A downloaded file holds the same bytes ``export_models`` writes, and importing it gives the same
document back (the commands' round-trip guarantee). An import goes through ``draft_import``: it is
validated by the one validator and becomes the model's draft; nothing is published, and nothing is
stored when the file is malformed or the model invalid.
"""

from __future__ import annotations

import json

import yaml
from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from models_registry.definition import DefinitionError
from models_registry.designer import describe_problems
from models_registry.diff import ADDED, CHANGED, REMOVED, documents_diff
from models_registry.documents import ModelFileSyntaxError, parse_model_file
from models_registry.models import ModelVersion, StatusModel
from models_registry.services import draft_document, draft_errors, draft_import, dump_documents
from models_registry.validation import document_validate

FORMATS = {"yaml": "application/yaml", "json": "application/json"}
FILE_EXTENSIONS = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 1024 * 1024
DIFF_SECTIONS = {
    "model": "Model fields",
    "states": "States",
    "transitions": "Transitions",
    "milestones": "Milestones",
    "display": "Display fields",
}
KIND_WORDS = {ADDED: "added", REMOVED: "removed", CHANGED: "changed"}


def file_response(text: str, *, fmt: str, filename: str) -> HttpResponse:
    response = HttpResponse(text.encode(), content_type=f"{FORMATS[fmt]}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def requested_format(request) -> str:
    fmt = request.GET.get("format", "yaml")
    if fmt not in FORMATS:
        raise Http404("Download as format=yaml or format=json.")
    return fmt


def draft_file_text(status_model: StatusModel, *, fmt: str) -> str:
    """The draft as a file: a valid draft in the very form publishing would give it (so the same
    bytes as ``export_models`` once published); one with problems as it is, to finish elsewhere."""
    document = draft_document(status_model=status_model)
    if not draft_errors(document):
        return dump_documents([document_validate(document)], fmt=fmt)
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


class ModelFileForm(forms.Form):
    file = forms.FileField(
        label="Model file",
        help_text="One status model, as YAML (.yaml, .yml) or JSON (.json), as export_models or a download writes it.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = self.filename = upload.name or ""
        if not name.lower().endswith(FILE_EXTENSIONS):
            raise forms.ValidationError(f"“{name}” is not a model file: choose a .yaml, .yml or .json file.")
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError("The file is larger than 1 MiB; a status model is much smaller.")
        try:
            documents = parse_model_file(upload.read(), filename=name.lower())
        except ModelFileSyntaxError as error:
            raise forms.ValidationError(
                f"Line {error.line}, column {error.column}: {error.message}. Nothing was imported."
            ) from None
        if len(documents) != 1:
            raise forms.ValidationError(
                "The file holds no model." if not documents else
                f"The file holds {len(documents)} models; import one model per file here "
                "(manage.py import_models reads several)."
            )  # fmt: skip
        return documents[0]


class ModelFileAdminMixin:
    """For ``StatusModelAdmin``: "Import a model file" (from the list) and the draft's download."""

    import_template = "admin/models_registry/statusmodel/import.html"

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="models_registry_statusmodel_import"),
            path(
                "<path:object_id>/export/",
                self.admin_site.admin_view(self.draft_export_view),
                name="models_registry_statusmodel_export",
            ),
            *super().get_urls(),
        ]

    def draft_export_view(self, request, object_id):
        status_model = self.get_object(request, unquote(object_id))
        if status_model is None:
            raise Http404("No such model.")
        if not self.has_view_or_change_permission(request, status_model):
            raise PermissionDenied
        fmt = requested_format(request)
        return file_response(draft_file_text(status_model, fmt=fmt), fmt=fmt, filename=f"{status_model.key}-draft")

    def import_view(self, request):
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        form = ModelFileForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            status_model = self._import(request, form)
            if status_model is not None:
                return HttpResponseRedirect(reverse("admin:models_registry_statusmodel_change", args=[status_model.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import a model file",
            "subtitle": None,
            "form": form,
            "media": form.media,  # not the designer's scripts, which need the designer's page
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.import_template, context)

    def _import(self, request, form) -> StatusModel | None:
        document = form.cleaned_data["file"]
        key = document.get("id") if isinstance(document, dict) else None
        existing = StatusModel.objects.filter(key=key).first() if isinstance(key, str) else None
        allowed = self.has_change_permission(request, existing) if existing else self.has_add_permission(request)
        if not allowed:
            form.add_error("file", f"You may not {'change' if existing else 'add'} the model {key!r}.")
            return None
        try:
            status_model = draft_import(document=document)
        except DefinitionError as error:
            problems = describe_problems(document if isinstance(document, dict) else {}, error.errors)
            form.add_error(
                "file",
                [f"The model in this file has {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
                 "nothing was imported:", *(problem.text for problem in problems)],
            )  # fmt: skip
            return None
        verb = "replaces the draft of" if existing else "is the draft of the new model"
        messages.success(
            request,
            f"Imported {form.filename}: it {verb} {status_model.key}. Nothing is published until you publish it here.",
        )
        return status_model


class VersionFilesAdminMixin:
    """For ``ModelVersionAdmin``: a version's download and the diff between two versions."""

    diff_template = "admin/models_registry/modelversion/diff.html"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="models_registry_modelversion_export",
            ),
            path(
                "<path:object_id>/diff/",
                self.admin_site.admin_view(self.diff_view),
                name="models_registry_modelversion_diff",
            ),
            *super().get_urls(),
        ]

    def _version(self, request, object_id) -> ModelVersion:
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404("No such version.")
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        return version

    def export_view(self, request, object_id):
        version = self._version(request, object_id)
        fmt = requested_format(request)
        return file_response(
            dump_documents([version.document], fmt=fmt), fmt=fmt, filename=f"{version.model.key}-v{version.number}"
        )

    @staticmethod
    def diff_url(version: ModelVersion, against: int | None = None) -> str:
        url = reverse("admin:models_registry_modelversion_diff", args=[version.pk])
        return f"{url}?{urlencode({'against': against})}" if against is not None else url

    def diff_view(self, request, object_id):
        """Changes from version ``against`` (a number; by default the one before) to this one."""
        version = self._version(request, object_id)
        versions = {v.number: v for v in version.model.versions.select_related("published_by").order_by("number")}
        # The form's two selects: "to" moves to that version's page, keeping "against".
        to = request.GET.get("to", "")
        if to.isdigit() and int(to) in versions and int(to) != version.number:
            against = request.GET.get("against", "")
            return HttpResponseRedirect(self.diff_url(versions[int(to)], int(against) if against.isdigit() else None))
        against = request.GET.get("against", "")
        missing = None
        if against.isdigit() and int(against) in versions:
            other = versions[int(against)]
        elif against:
            missing, other = against, None
        else:
            earlier = [number for number in versions if number < version.number]
            later = [number for number in versions if number > version.number]
            other = versions[max(earlier)] if earlier else versions[min(later)] if later else None
        changes = documents_diff(other.document, version.document) if other is not None else []
        sections = [
            {"key": key, "title": title, "changes": [c for c in changes if c.section == key]}
            for key, title in DIFF_SECTIONS.items()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{version.model.key}: what changed",
            "subtitle": None,
            "original": version,
            "version": version,
            "other": other,
            "missing": missing,
            "versions": list(versions.values()),
            "sections": [section for section in sections if section["changes"]],
            "counts": {kind: sum(c.kind == kind for c in changes) for kind in KIND_WORDS},
            "total": len(changes),
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.diff_template, context)
