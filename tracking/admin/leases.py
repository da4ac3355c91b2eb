"""The Kinesis consumer's shard leases."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Max, Sum

from tracking.admin.common import ReadOnlyAdminMixin, shortened
from tracking.inbox.selectors import dead_letter_count, inbox_backlog
from tracking.models import ShardLease


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Kinesis consumer at a glance: who reads each shard, how far behind, how fast."""

    # What tells whether the consumer keeps up, so that the list fits 1280 px beside the filters;
    # the lease's page adds its expiry, the records processed, the checkpoint itself.
    list_display = [
        "stream", "shard_id", "short_owner", "lag", "records_per_second_display", "last_checkpoint_at", "finished",
    ]  # fmt: skip
    list_filter = ["stream", "finished", "owner"]
    change_list_template = "admin/tracking/shardlease/change_list.html"

    def changelist_view(self, request, extra_context=None):
        # The figures /metrics serves, read the same way, above the shards.
        leases = ShardLease.objects.filter(finished=False).aggregate(
            rate=Sum("records_per_second"), lag=Max("millis_behind_latest")
        )
        extra_context = {
            **(extra_context or {}),
            "pipeline": {
                "backlog": inbox_backlog(),
                "dead_letters": dead_letter_count(),
                "records_per_second": leases["rate"] or 0,
                "max_lag_seconds": None if leases["lag"] is None else leases["lag"] / 1000,
                "owners": ShardLease.objects.filter(finished=False)
                .exclude(owner="")
                .values("owner")
                .distinct()
                .count(),
            },
        }
        return super().changelist_view(request, extra_context)

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
