"""Admin for operators: instances with their history, the inbox, dead letters and API tokens."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from models_registry.admin import ModelVersionAdmin
from models_registry.models import ModelVersion
from models_registry.selectors import version_definition
from tracking.models import DeadLetter, InboxEvent, ProcessInstance, ShardLease, TransitionRecord
from tracking.operations.failed_events import events_retry_failed, events_skip_failed
from tracking.operations.moves import instance_move_manually
from tracking.progress.links import instance_tracking_link_renew, instance_tracking_url
from tracking.progress.selectors import version_state_counts


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionRecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TransitionRecord
    fields = ["from_state", "to_state", "occurred_at", "recorded_at", "event", "actor", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class MoveForm(forms.Form):
    target = forms.ChoiceField(label="Move to state")
    note = forms.CharField(max_length=400, help_text="Why; recorded in the history.")


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["transaction_id", "model", "state", "status", "version", "updated_at"]
    list_filter = ["status", "model"]
    search_fields = ["transaction_id"]
    list_select_related = ["model", "version"]
    readonly_fields = [
        "model", "version", "transaction_id", "state", "status", "context",
        "created_at", "started_at", "state_entered_at", "updated_at", "move_link", "customer_link",
    ]  # fmt: skip
    inlines = [TransitionRecordInline]
    show_full_result_count = False
    actions = ["renew_customer_links"]

    @admin.display(description="Customer link")
    def customer_link(self, obj):
        if not obj.pk or not obj.version_id:
            return "-"
        # On STATUSTRACKER_PUBLIC_URL, the host customers reach, not the one the admin is served on.
        url = instance_tracking_url(instance=obj)
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
        form.fields["target"].choices = [(key, key) for key in definition.kinds if key != instance.state]
        if request.method == "POST" and form.is_valid():
            instance_move_manually(
                instance_id=instance.pk,
                target=form.cleaned_data["target"],
                actor=request.user,
                note=form.cleaned_data["note"],
            )
            messages.success(request, f"Moved to {form.cleaned_data['target']}.")
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
    list_display = ["event_id", "event_type", "status", "short_reason"]
    list_filter = ["status", "source_kind", "model"]
    search_fields = ["event_id", "instance__transaction_id"]
    list_select_related = ["model"]
    readonly_fields = [f.name for f in InboxEvent._meta.fields]
    show_full_result_count = False
    actions = ["retry_failed", "skip_failed"]

    @admin.display(description="reason")
    def short_reason(self, obj):
        if len(obj.reason) <= 60:
            return obj.reason
        return format_html('<span title="{}">{}…</span>', obj.reason, obj.reason[:60])

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
    list_display = ["received_at", "source_kind", "source_ref", "field", "reason"]
    list_filter = ["source_kind"]
    search_fields = ["source_ref", "reason"]
    readonly_fields = ["received_at", "source_kind", "source_ref", "field", "reason", "raw_text"]
    exclude = ["raw"]

    @admin.display(description="Raw input")
    def raw_text(self, obj):
        return bytes(obj.raw)[:20000].decode("utf-8", errors="replace")


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Kinesis consumer at a glance: who reads each shard, how far behind, how fast."""

    list_display = [
        "stream", "shard_id", "owner", "lag", "records_per_second_display", "last_checkpoint_at",
        "records_processed", "finished", "lease_expires_at",
    ]  # fmt: skip
    list_filter = ["stream", "finished", "owner"]
    search_fields = ["shard_id", "owner"]
    readonly_fields = [f.name for f in ShardLease._meta.fields]

    def has_delete_permission(self, request, obj=None):
        # Deleting a lease would lose its checkpoint: the shard would be read again from the start.
        return False

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
