"""Admin for operators: instances with their history, the inbox, dead letters and API tokens."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from models_registry.admin import ModelVersionAdmin
from models_registry.models import ModelVersion, StatusModel
from models_registry.selectors import version_definition
from tracking.models import DeadLetter, InboxEvent, ProcessInstance, ShardLease, TransitionRecord
from tracking.operations.failed_events import events_retry_failed, events_skip_failed
from tracking.operations.moves import instance_move_manually
from tracking.progress.links import instance_tracking_link_renew, instance_tracking_url
from tracking.progress.selectors import started_instances, version_state_counts


def shortened(value: str, limit: int):
    """A long value cut to ``limit`` characters for a list column, whole in its tooltip; the
    object's own page shows it in full."""
    if len(value) <= limit:
        return value
    return format_html('<span title="{}">{}…</span>', value, value[:limit])


def state_labels(version_id: int | None) -> dict[str, str]:
    """The labels of a version's states by key (definitions are cached per process)."""
    if version_id is None:
        return {}
    document = version_definition(version_id=version_id).document
    return {state["key"]: state.get("label") or state["key"] for state in document["states"]}


def state_label(version_id: int | None, key: str) -> str:
    if not key:
        return "-"
    return state_labels(version_id).get(key, key)


class StatusModelListFilter(admin.SimpleListFilter):
    """The model filter by name rather than by id; same query parameter as the field's own filter."""

    title = "model"
    parameter_name = "model__id__exact"

    def lookups(self, request, model_admin):
        return [(str(model.pk), model.name) for model in StatusModel.objects.all()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(model_id=self.value())
        return queryset


class ReadOnlyAdminMixin:
    class Media:
        # Long values wrap in the lists rather than widen them past 1280 px.
        css = {"all": ["tracking/admin_lists.css"]}

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionRecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TransitionRecord
    fields = ["from_label", "to_label", "occurred_at", "recorded_at", "event", "actor", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    # Labels of the version the instance is on now; a state it no longer has (after a migration)
    # keeps its key.
    @admin.display(description="from")
    def from_label(self, obj):
        return state_label(obj.instance.version_id, obj.from_state)

    @admin.display(description="to")
    def to_label(self, obj):
        return state_label(obj.instance.version_id, obj.to_state)


class MoveForm(forms.Form):
    target = forms.ChoiceField(label="Move to state")
    note = forms.CharField(max_length=400, help_text="Why; recorded in the history.")


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Labels, not keys: the model's name, the state's label, the status in words. Transaction ids
    # can be long: the list shows their start, the instance's page all of it.
    list_display = ["short_transaction_id", "model_name", "state_name", "status", "version_number", "updated_at"]
    list_display_links = ["short_transaction_id"]
    list_filter = ["status", StatusModelListFilter]
    search_fields = ["transaction_id"]
    list_select_related = ["model", "version"]
    readonly_fields = [
        "model", "version", "transaction_id", "state_with_key", "status", "context",
        "created_at", "started_at", "state_entered_at", "updated_at", "move_link", "customer_link",
    ]  # fmt: skip
    inlines = [TransitionRecordInline]
    show_full_result_count = False
    actions = ["renew_customer_links"]

    @admin.display(description="transaction id", ordering="transaction_id")
    def short_transaction_id(self, obj):
        return shortened(obj.transaction_id, 40)

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
            '<input type="text" readonly value="{}" size="90" aria-label="Customer link"> <a href="{}" '
            'target="_blank" rel="noopener noreferrer">Open</a><div class="help">Copy it for the customer. '
            "To revoke it, use the action “Revoke customer links” in the list: a new link replaces it.</div>",
            url,
            url,
        )

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

    def has_change_permission(self, request, obj=None):
        # Read-only fields, but the change page stays reachable for the manual transition.
        return request.user.has_perm("tracking.change_processinstance")


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Few, short columns, so that the list fits 1280 px beside the filters; the event's page has
    # everything (model, source, times, duplicates); the list is in arrival order, newest first.
    list_display = ["short_event_id", "event_type", "status", "short_reason"]
    list_filter = ["status", "source_kind", StatusModelListFilter]
    search_fields = ["event_id", "instance__transaction_id"]
    list_select_related = ["model"]
    readonly_fields = [f.name for f in InboxEvent._meta.fields]
    show_full_result_count = False
    actions = ["retry_failed", "skip_failed"]

    @admin.display(description="event id", ordering="event_id")
    def short_event_id(self, obj):
        return shortened(obj.event_id, 40)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return shortened(obj.reason, 60)

    def has_repair_permission(self, request) -> bool:
        return request.user.has_perm("tracking.change_inboxevent")

    @admin.action(description="Retry the selected failed events", permissions=["repair"])
    def retry_failed(self, request, queryset):
        count = events_retry_failed(event_pks=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} failed event(s) will be tried again.", messages.SUCCESS)

    @admin.action(description="Skip the selected failed events (their instances go on)", permissions=["repair"])
    def skip_failed(self, request, queryset):
        count = events_skip_failed(event_pks=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"{count} failed event(s) skipped.", messages.SUCCESS)


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Where from and why, cut short so that the list fits 1280 px; the dead letter's page has all of it.
    list_display = ["received_at", "source_kind", "short_source_ref", "field", "short_reason"]
    list_filter = ["source_kind"]
    search_fields = ["source_ref", "reason"]
    readonly_fields = ["received_at", "source_kind", "source_ref", "field", "reason", "raw_text"]
    exclude = ["raw"]

    @admin.display(description="source ref", ordering="source_ref")
    def short_source_ref(self, obj):
        return shortened(obj.source_ref, 40)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return shortened(obj.reason, 60)

    @admin.display(description="Raw input")
    def raw_text(self, obj):
        return bytes(obj.raw)[:20000].decode("utf-8", errors="replace")


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Kinesis consumer at a glance: who reads each shard, how far behind, how fast."""

    # What tells whether the consumer keeps up, so that the list fits 1280 px beside the filters;
    # the lease's page adds its expiry, the records processed, the checkpoint itself.
    list_display = [
        "stream", "shard_id", "short_owner", "lag", "records_per_second_display", "last_checkpoint_at", "finished",
    ]  # fmt: skip
    list_filter = ["stream", "finished", "owner"]
    search_fields = ["shard_id", "owner"]
    readonly_fields = [f.name for f in ShardLease._meta.fields]

    def has_delete_permission(self, request, obj=None):
        # Deleting a lease would lose its checkpoint: the shard would be read again from the start.
        return False

    @admin.display(description="owner", ordering="owner")
    def short_owner(self, obj):
        return shortened(obj.owner, 24) or "-"

    @admin.display(description="Lag", ordering="millis_behind_latest")
    def lag(self, obj):
        if obj.millis_behind_latest is None:
            return "-"
        return f"{obj.millis_behind_latest / 1000:.1f} s"

    @admin.display(description="Records/s", ordering="records_per_second")
    def records_per_second_display(self, obj):
        return f"{obj.records_per_second:.1f}"


# A version's diagram with how many instances are in each state now: the registry's admin page,
# with the counts that only this app can read.
admin.site.unregister(ModelVersion)


@admin.register(ModelVersion)
class ModelVersionWithInstancesAdmin(ModelVersionAdmin):
    def state_counts(self, obj) -> dict[str, int]:
        return version_state_counts(version_id=obj.pk)

    def instance_count(self):
        # One subquery per row in the list's single query, not one query per row.
        on_version = started_instances().filter(version=OuterRef("pk")).order_by()
        return Coalesce(Subquery(on_version.values("version").annotate(n=Count("id")).values("n")), 0)


# The designer, with "try it", the customer page preview and instance counts per version.
from tracking import designer_admin  # noqa: E402, F401
