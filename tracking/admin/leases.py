"""The Kinesis consumer's shard leases."""

from __future__ import annotations

from django.contrib import admin

from tracking.admin.common import ReadOnlyAdminMixin, shortened
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
