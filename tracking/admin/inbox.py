"""The inbox: every accepted event with its outcome; failed events retried or skipped, parked events
retried or expired before their time."""

from __future__ import annotations

from django.contrib import admin, messages

from tracking.admin.common import ReadOnlyAdminMixin, StatusModelListFilter, shortened
from tracking.admin.confirmation import ConfirmForm, NoteForm, confirmation_page, confirmed_data
from tracking.models import EventStatus, InboxEvent
from tracking.operations.failed_events import events_retry_failed, events_skip_failed
from tracking.operations.parked_events import events_expire_parked_now, events_retry_parked

# The repairs that fit the events of a status; a list filtered by status offers only those.
ACTIONS_BY_STATUS = {
    EventStatus.FAILED: ["retry_failed", "skip_failed"],
    EventStatus.PARKED: ["retry_parked", "expire_parked"],
}


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
    actions = ["retry_failed", "skip_failed", "retry_parked", "expire_parked"]

    @admin.display(description="event id", ordering="event_id")
    def short_event_id(self, obj):
        return shortened(obj.event_id, 40)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return shortened(obj.reason, 60)

    def has_repair_permission(self, request) -> bool:
        return request.user.has_perm("tracking.change_inboxevent")

    def get_actions(self, request):
        actions = super().get_actions(request)
        status = request.GET.get("status__exact")
        if status is None:
            return actions
        fitting = ACTIONS_BY_STATUS.get(status, [])
        return {name: action for name, action in actions.items() if name in fitting}

    @admin.action(description="Retry the selected failed events", permissions=["repair"])
    def retry_failed(self, request, queryset):
        count = events_retry_failed(event_pks=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} failed event(s) will be tried again.", messages.SUCCESS)

    @admin.action(description="Skip the selected failed events (their instances go on)", permissions=["repair"])
    def skip_failed(self, request, queryset):
        count = events_skip_failed(event_pks=queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(request, f"{count} failed event(s) skipped.", messages.SUCCESS)

    @admin.action(description="Retry the selected parked events now…", permissions=["repair"])
    def retry_parked(self, request, queryset):
        parked = queryset.filter(status=EventStatus.PARKED)
        form = ConfirmForm(confirmed_data(request))
        if form.is_valid():
            count = events_retry_parked(event_pks=parked.values_list("pk", flat=True))
            self.message_user(
                request, f"{count} parked event(s) will be offered to their instances again.", messages.SUCCESS
            )
            return None
        return confirmation_page(
            self,
            request,
            queryset,
            title="Retry parked events",
            intro=(
                f"{parked.count()} of the {queryset.count()} events chosen are parked. Each becomes pending "
                "and is offered to its instance again, in arrival order; one that still cannot apply is "
                "parked again (or ignored when it never can). The others are left as they are."
            ),
            form=form,
            submit="Retry them",
        )

    @admin.action(description="Expire the selected parked events now…", permissions=["repair"])
    def expire_parked(self, request, queryset):
        parked = queryset.filter(status=EventStatus.PARKED)
        form = NoteForm(confirmed_data(request))
        if form.is_valid():
            count = events_expire_parked_now(
                event_pks=parked.values_list("pk", flat=True), actor=request.user, note=form.cleaned_data["note"]
            )
            self.message_user(request, f"{count} parked event(s) expired.", messages.SUCCESS)
            return None
        return confirmation_page(
            self,
            request,
            queryset,
            title="Expire parked events",
            intro=(
                f"{parked.count()} of the {queryset.count()} events chosen are parked. Each becomes expired "
                "now, before its park_ttl, with your name and the note as its reason; it will not apply. "
                "The others are left as they are."
            ),
            form=form,
            submit="Expire them",
        )
