"""The inbox: every accepted event with its outcome; failed events retried or skipped."""

from __future__ import annotations

from django.contrib import admin, messages

from tracking.admin.common import ReadOnlyAdminMixin, StatusModelListFilter, shortened
from tracking.models import InboxEvent
from tracking.operations.failed_events import events_retry_failed, events_skip_failed


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
