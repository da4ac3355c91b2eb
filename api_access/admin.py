"""Admin for API tokens: a new token's key is shown once, when it is created."""

from django import forms
from django.contrib import admin, messages

from api_access.models import ApiToken
from api_access.services import token_create


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "user", "can_produce", "can_read", "revoked"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "prefix", "user", "can_produce", "can_read", "revoked", "last_used_at"]
    list_filter = ["can_produce", "can_read", "revoked"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, key = token_create(name=obj.name, user=obj.user, can_produce=obj.can_produce, can_read=obj.can_read)
        obj.pk = token.pk
        messages.warning(request, f"The key of token {token.name!r} is {key} — copy it now, it is not shown again.")
