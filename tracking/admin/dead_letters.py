"""Dead letters: input that was rejected, with where it came from and why."""

from __future__ import annotations

from django.contrib import admin

from tracking.admin.common import ReadOnlyAdminMixin, shortened
from tracking.models import DeadLetter


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
