"""Admin for businesses: edit a model's draft (states and transitions inline) and publish it."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from models_registry.definition import DefinitionError
from models_registry.diagram import model_diagram
from models_registry.handlers import handler_names
from models_registry.models import ModelVersion, StateDefinition, StatusModel, TransitionDefinition
from models_registry.services import dump_documents, model_publish


class StateInline(admin.TabularInline):
    model = StateDefinition
    fields = ["position", "key", "label", "kind", "description", "expected_within"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.base_fields["description"].widget = forms.Textarea(attrs={"rows": 1, "cols": 30})
        return formset


class TransitionInline(admin.TabularInline):
    model = TransitionDefinition
    fields = ["position", "event", "from_states", "to_state", "when", "set_fields"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.base_fields["set_fields"].widget.attrs.update(rows=2, cols=40)
        return formset


class VersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["number", "published_at", "published_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class StatusModelForm(forms.ModelForm):
    # Admins pick among handlers registered in code; they never type import paths.
    handler = forms.ChoiceField()

    class Meta:
        model = StatusModel
        fields = [
            "key", "name", "description", "handler", "initial_state", "start_events",
            "park_ttl", "milestones", "display", "queue",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["handler"].choices = [(name, name) for name in handler_names()]
        for name in ("start_events", "milestones", "display"):
            self.fields[name].widget.attrs.update(rows=3)


def _report(request, status_model, error: DefinitionError) -> None:
    messages.error(request, f"{status_model.key} was not published; fix these fields of the draft:")
    for path, errors in error.errors.items():
        messages.error(request, f"{path or 'model'}: {' '.join(errors)}")


@admin.register(StatusModel)
class StatusModelAdmin(admin.ModelAdmin):
    form = StatusModelForm
    list_display = ["key", "name", "handler", "latest_version", "queue", "updated_at"]
    search_fields = ["key", "name"]
    inlines = [StateInline, TransitionInline, VersionInline]
    actions = ["publish_selected"]
    change_form_template = "admin/models_registry/statusmodel/change_form.html"

    @admin.display(description="latest version")
    def latest_version(self, obj):
        version = obj.versions.order_by("-number").first()
        return version.number if version else "draft only"

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

    def response_change(self, request, obj):
        if "_publish" in request.POST:
            self._publish(request, obj)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_publish" in request.POST:
            self._publish(request, obj)
            return HttpResponseRedirect(f"../{obj.pk}/change/")
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Publish the drafts of the selected models")
    def publish_selected(self, request, queryset):
        for status_model in queryset:
            self._publish(request, status_model)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Published versions are immutable: shown, never edited, with the diagram of their states.

    ``tracking.admin`` registers a subclass in its place that adds how many instances are in each
    state now: this app never imports ``tracking``.
    """

    list_display = ["model", "number", "published_at", "published_by"]
    list_filter = ["model"]
    readonly_fields = ["model", "number", "published_at", "published_by", "document_yaml"]
    exclude = ["document"]
    change_form_template = "admin/models_registry/modelversion/change_form.html"

    class Media:
        css = {"all": ["models_registry/diagram.css"]}
        js = ["vendor/viz-global-3.31.0.js", "models_registry/diagram.js"]

    def state_counts(self, obj) -> dict[str, int] | None:
        """Instances in each state of the version now; None: the page shows no counts."""
        return None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        if version is not None:
            extra_context = {
                **(extra_context or {}),
                "diagram": model_diagram(version.document, counts=self.state_counts(version)),
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
