"""Customer email updates in the admin: which changes each model mails (per model, next to its
queue as an operational setting), and the subscribed addresses, for staff only, to find and delete
one on request (docs/customer-email.md)."""

from django.contrib import admin

from tracking.notify.email_models import CustomerEmailSettings, EmailSubscription
from tracking.notify.emails import customer_email_settings_changed


@admin.register(CustomerEmailSettings)
class CustomerEmailSettingsAdmin(admin.ModelAdmin):
    """A model offers "Email me about changes" on its customer page once it has a row here with
    anything ticked. Saving takes effect at once in every process (the shared cache is cleared)."""

    list_display = ["model", "milestones", "exceptions", "delays", "outcomes", "updated_at"]
    fields = ["model", "milestones", "exceptions", "delays", "outcomes"]
    autocomplete_fields = ["model"]

    def get_readonly_fields(self, request, obj=None):
        return ["model"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        customer_email_settings_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        customer_email_settings_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        customer_email_settings_changed()


@admin.register(EmailSubscription)
class EmailSubscriptionAdmin(admin.ModelAdmin):
    """Addresses are personal data: shown to staff here and in the API only, never edited; deleting
    one stops its mails and forgets it, as the customer's own unsubscribe does."""

    list_display = ["email", "instance", "language", "confirmed_at", "last_sent_at", "created_at"]
    list_filter = [("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "instance__transaction_id"]
    list_select_related = ["instance", "instance__model"]
    readonly_fields = ["instance", "email", "language", "created_at", "confirmation_sent_at", "confirmed_at",
                       "last_sent_at"]  # fmt: skip
    exclude = ["key"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
