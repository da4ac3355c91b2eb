"""Instances: their list, their page with the history, the manual move and the customer link."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from models_registry.diagram import model_diagram
from models_registry.selectors import version_definition
from tracking.admin.common import ReadOnlyAdminMixin, StatusModelListFilter, shortened, state_label, state_labels
from tracking.admin.instance_filters import DelayedListFilter, StateListFilter, VersionListFilter, instance_search
from tracking.admin.repairs import InstanceRepairMixin
from tracking.models import EventStatus, ProcessInstance
from tracking.operations.moves import instance_move_manually
from tracking.progress.links import instance_tracking_link_renew, instance_tracking_url
from tracking.progress.story import instance_story


def _shown(value) -> str:
    """A context value as text: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class MoveForm(forms.Form):
    target = forms.ChoiceField(label="Move to state")
    note = forms.CharField(max_length=400, help_text="Why; recorded in the history.")


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(InstanceRepairMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Labels, not keys: the model's name, the state's label, the status in words. Transaction ids
    # can be long: the list shows their start, the instance's page all of it.
    list_display = ["short_transaction_id", "model_name", "state_name", "status", "updated_at"]
    list_display_links = ["short_transaction_id"]
    search_fields = ["transaction_id"]
    list_select_related = ["model", "version"]
    readonly_fields = [
        "model", "version", "transaction_id", "state_with_key", "status", "context_fields",
        "created_at", "started_at", "state_entered_at", "updated_at", "move_link", "customer_link",
    ]  # fmt: skip
    fields = readonly_fields  # nothing is edited here: moves and links have their own buttons
    list_filter = ["status", StatusModelListFilter, VersionListFilter, StateListFilter, DelayedListFilter, "updated_at"]
    search_help_text = (
        "A transaction id, or a value of the context (an email, a tracking number); field=value for one context field."
    )
    change_form_template = "admin/tracking/processinstance/change_form.html"

    class Media:
        css = {"all": ["models_registry/diagram.css", "tracking/instance.css"]}
        js = ["vendor/viz-global-3.31.0.js", "models_registry/diagram.js", "tracking/instance.js"]

    show_full_result_count = False
    actions = ["renew_customer_links"]

    @admin.display(description="transaction id", ordering="transaction_id")
    def short_transaction_id(self, obj):
        return shortened(obj.transaction_id, 20)

    @admin.display(description="model", ordering="model__key")
    def model_name(self, obj):
        if obj.version_id is None:
            return obj.model.key
        return version_definition(version_id=obj.version_id).document.get("name") or obj.model.key

    @admin.display(description="state", ordering="state")
    def state_name(self, obj):
        return state_label(obj.version_id, obj.state)

    @admin.display(description="state")
    def state_with_key(self, obj):
        label = state_label(obj.version_id, obj.state)
        return label if label in (obj.state, "-") else f"{label} ({obj.state})"

    @admin.display(description="version", ordering="version__number")
    def version_number(self, obj):
        return f"v{obj.version.number}" if obj.version_id else "-"

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and obj.version_id:
            # On the host and port this page was reached on, as the API's tracking_url: a display
            # callable gets no request, so the link is made here.
            obj.customer_url = instance_tracking_url(instance=obj, request=request)
        return obj

    @admin.display(description="Customer link")
    def customer_link(self, obj):
        url = getattr(obj, "customer_url", None)
        if not obj.pk or not url:
            return "-"
        return format_html(
            '<div class="instance-link"><input type="text" readonly value="{}" id="customer-link" '
            'aria-label="Customer link"> <button type="button" class="button" data-copy="customer-link">Copy '
            'customer link</button> <a href="{}" target="_blank" rel="noopener noreferrer">Open</a></div>'
            '<div class="help">Send it to the customer. "Renew link" (below the history) revokes it and makes a '
            "new one.</div>",
            url,
            url,
        )

    @admin.display(description="context")
    def context_fields(self, obj):
        if not obj.context:
            return "-"
        rows = format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", ((name, _shown(value)) for name, value in sorted(obj.context.items()))
        )
        return format_html('<dl class="instance-context">{}</dl>', rows)

    @admin.action(description="Revoke customer links (issue new ones)", permissions=["change"])
    def renew_customer_links(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            instance_tracking_link_renew(instance_id=pk)
        messages.success(request, f"Revoked the customer links of {queryset.count()} instances; new ones replace them.")

    @admin.display(description="Manual transition")
    def move_link(self, obj):
        if not obj.pk or not obj.version_id:
            return "-"
        url = reverse("admin:tracking_processinstance_move", args=[obj.pk])
        return format_html('<a class="button" href="{}">Move to another state…</a>', url)

    def get_urls(self):
        return [
            path("<int:pk>/move/", self.admin_site.admin_view(self.move_view), name="tracking_processinstance_move"),
            path(
                "<int:pk>/renew-link/",
                self.admin_site.admin_view(self.renew_link_view),
                name="tracking_processinstance_renew_link",
            ),
            *super().get_urls(),
        ]

    def move_view(self, request, pk):
        instance = ProcessInstance.objects.select_related("model", "version").get(pk=pk)
        if not request.user.has_perm("tracking.change_processinstance") or instance.version_id is None:
            messages.error(request, "You cannot move this instance.")
            return redirect("admin:tracking_processinstance_change", pk)
        definition = version_definition(version_id=instance.version_id)
        form = MoveForm(request.POST or None)
        labels = state_labels(instance.version_id)
        form.fields["target"].choices = [(key, labels[key]) for key in definition.kinds if key != instance.state]
        if request.method == "POST" and form.is_valid():
            instance_move_manually(
                instance_id=instance.pk,
                target=form.cleaned_data["target"],
                actor=request.user,
                note=form.cleaned_data["note"],
            )
            messages.success(request, f"Moved to {labels[form.cleaned_data['target']]}.")
            return redirect("admin:tracking_processinstance_change", pk)
        context = {**self.admin_site.each_context(request), "form": form, "instance": instance, "opts": self.opts}
        return render(request, "admin/tracking/processinstance/move.html", context)

    def renew_link_view(self, request, pk):
        if request.method != "POST" or not request.user.has_perm("tracking.change_processinstance"):
            raise PermissionDenied
        instance_tracking_link_renew(instance_id=pk)
        messages.success(request, "The old customer link no longer works; send the customer the new one.")
        return redirect("admin:tracking_processinstance_change", pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        instance = self.get_object(request, object_id)
        if instance is not None:
            story = instance_story(instance=instance)
            definition = version_definition(version_id=instance.version_id) if instance.version_id else None
            extra_context = {
                **(extra_context or {}),
                "story": story,
                "outcome_counts": [
                    (label, story.counts[status]) for status, label in EventStatus.choices if story.counts.get(status)
                ],
                "diagram": model_diagram(definition, current=instance.state, path=story.path) if definition else None,
                "can_renew": request.user.has_perm("tracking.change_processinstance"),
                # Read-only fields: no save buttons.
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(instance_search(term)), False

    def has_change_permission(self, request, obj=None):
        # Read-only fields, but the change page stays reachable for the manual transition.
        return request.user.has_perm("tracking.change_processinstance")
