"""What the operator's admin pages share: read-only pages, labels for state keys, short columns."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from models_registry.models import StatusModel
from models_registry.selectors import version_definition


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
