"""Webhooks in the admin: businesses' subscriptions (filters chosen with controls from the model's
latest version, the secret shown once, rotate it, send a test event, enable again) and the delivery
log of notifications, with manual redelivery.

Acting needs ``tracking.manage_webhooks`` or Django's add/change/delete permission on subscriptions;
seeing, that or the view permission. Redelivering needs ``tracking.manage_webhooks``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from models_registry.models import ModelVersion, StatusModel
from tracking.admin.common import ReadOnlyAdminMixin, StatusModelListFilter, shortened
from tracking.notify.models import ChangeKind, DeliveryAttempt, DeliveryStatus, Notification, WebhookSubscription
from tracking.notify.subscriptions import (
    DEFAULT_OVERLAP,
    FILTER_FIELDS,
    MAX_OVERLAP,
    filter_choices,
    notifications_redeliver,
    subscription_create,
    subscription_enable,
    subscription_problems,
    subscription_rotate_secret,
    subscription_send_test,
    subscription_update,
)

MANAGE_WEBHOOKS = "tracking.manage_webhooks"


def _with_unknown(choices: list[tuple[str, str]], current: list[str]) -> list[tuple[str, str]]:
    """The latest version's choices, and any the subscription holds that it no longer has."""
    known = {key for key, _ in choices}
    return choices + [(key, f"{key} (not in the latest version)") for key in current if key not in known]


class WebhookSubscriptionForm(forms.ModelForm):
    """Controls for every filter; checked by the same validator as the API."""

    status_model: StatusModel | None = None  # set per request (WebhookSubscriptionAdmin.get_form)

    kinds = forms.MultipleChoiceField(
        choices=ChangeKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every kind.",
    )
    states = forms.MultipleChoiceField(
        required=False, help_text="Only changes into these states; none chosen: any. Ctrl/⌘-click for several."
    )
    milestones = forms.MultipleChoiceField(
        required=False, help_text="Only changes that reach these milestones; none chosen: any."
    )
    context_fields = forms.MultipleChoiceField(
        required=False,
        label="Context fields in the payload",
        help_text="The context fields the model's transitions set or its page shows.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["model", "url", "description", "kinds", "states", "milestones", "context_fields"]
        labels = {"url": "URL"}
        widgets = {"url": forms.URLInput(attrs={"size": 60, "placeholder": "https://erp.example.com/hooks"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = filter_choices(status_model=self.status_model)
        instance = self.instance
        for name, options in (
            ("states", choices.states),
            ("milestones", choices.milestones),
            ("context_fields", [(field, field) for field in choices.context_fields]),
        ):
            field = self.fields[name]
            field.choices = _with_unknown(options, list(getattr(instance, name) or []))
            field.widget.attrs["size"] = min(max(len(field.choices), 3), 8)
        if "model" in self.fields:  # adding: the model was chosen on the page before
            self.fields["model"].disabled = True
            self.fields["model"].initial = self.status_model.pk
            self.fields["model"].help_text = "The filters below are this model's."

    def clean(self):
        cleaned = super().clean()
        problems = subscription_problems(
            status_model=self.status_model,
            url=cleaned.get("url") if "url" in self.changed_data or self.instance.pk is None else None,
            kinds=cleaned.get("kinds") or [],
            states=cleaned.get("states") or [],
            milestones=cleaned.get("milestones") or [],
        )
        for field, reasons in problems.items():
            for reason in reasons:
                self.add_error("model" if field == "model_id" else field, reason)
        return cleaned


class RotateSecretForm(forms.Form):
    overlap_hours = forms.FloatField(
        min_value=0,
        max_value=MAX_OVERLAP.total_seconds() / 3600,
        initial=DEFAULT_OVERLAP.total_seconds() / 3600,
        label="Overlap (hours)",
        help_text="How long the current secret keeps signing too, so that the receiver can switch without losing "
        "a message; 0: it stops at once.",
    )


class ChooseModelForm(forms.Form):
    model = forms.ModelChoiceField(
        queryset=StatusModel.objects.filter(pk__in=ModelVersion.objects.values("model")).order_by("key"),
        help_text="Its latest version's states, milestones and context fields are the filters offered next.",
    )


def _may(request, django_permission: str) -> bool:
    return request.user.has_perm(MANAGE_WEBHOOKS) or request.user.has_perm(django_permission)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["short_url", "model", "description", "sends", "state_in_words", "created_at"]
    list_display_links = ["short_url"]
    list_filter = [StatusModelListFilter, "is_active"]
    list_select_related = ["model"]
    search_fields = ["url", "description"]
    change_form_template = "admin/tracking/webhooksubscription/change_form.html"
    readonly_fields = ["state_in_words", "secret_in_words", "created_by", "created_at", "delivery_log"]

    class Media:
        css = {"all": ["tracking/admin_lists.css", "tracking/webhooks.css"]}

    # --- Permissions ---------------------------------------------------------------------------

    def has_view_permission(self, request, obj=None):
        return _may(request, "tracking.view_webhooksubscription") or self.has_change_permission(request, obj)

    def has_add_permission(self, request):
        return _may(request, "tracking.add_webhooksubscription")

    def has_change_permission(self, request, obj=None):
        return _may(request, "tracking.change_webhooksubscription")

    def has_delete_permission(self, request, obj=None):
        return _may(request, "tracking.delete_webhooksubscription")

    # --- The list and the page -----------------------------------------------------------------

    @admin.display(description="URL", ordering="url")
    def short_url(self, obj):
        return shortened(obj.url, 60)

    @admin.display(description="Sends")
    def sends(self, obj):
        labels = dict(ChangeKind.choices)
        words = ", ".join(labels.get(kind, kind) for kind in obj.kinds) or "Every kind"
        only = [
            f"{len(values)} {name}"
            for name, values in (("states", obj.states), ("milestones", obj.milestones))
            if values
        ]
        return f"{words}; only at {' and '.join(only)}" if only else words

    @admin.display(description="State")
    def state_in_words(self, obj):
        if obj.is_active:
            return "Active"
        return (
            f"Disabled {obj.disabled_at:%Y-%m-%d %H:%M} UTC: {obj.disabled_reason}" if obj.disabled_at else "Disabled"
        )

    @admin.display(description="Secret")
    def secret_in_words(self, obj):
        words = "Shown once, when it was made or rotated; rotate it to get a new one."
        expires = obj.previous_secret_expires_at
        if obj.previous_secret and expires:
            words += f" The one before it signs too until {expires:%Y-%m-%d %H:%M} UTC."
        return words

    @admin.display(description="Delivery log")
    def delivery_log(self, obj):
        if obj.pk is None:
            return "-"
        url = reverse("admin:tracking_notification_changelist") + f"?subscription__id__exact={obj.pk}"
        pending = obj.notifications.filter(status=DeliveryStatus.PENDING).count()
        return format_html('<a href="{}">Notifications of this endpoint</a> ({} waiting to be sent)', url, pending)

    def get_fieldsets(self, request, obj=None):
        endpoint = ["url", "description"] if obj is not None else ["model", "url", "description"]
        fieldsets = [
            (None, {"fields": endpoint}),
            ("What is sent", {"fields": ["kinds", "states", "milestones", "context_fields"]}),
        ]
        if obj is not None:
            fieldsets.append(("State", {"fields": self.readonly_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        status_model = obj.model if obj is not None else self._chosen_model(request)
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"status_model": status_model})

    @staticmethod
    def _chosen_model(request) -> StatusModel | None:
        form = ChooseModelForm(request.GET)
        return form.cleaned_data["model"] if form.is_valid() else None

    def add_view(self, request, form_url="", extra_context=None):
        """First the model, then its filters: the choices of the second page depend on the first."""
        if self._chosen_model(request) is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            form = ChooseModelForm(request.GET if "model" in request.GET else None)
            return self._page(request, "choose_model.html", title="Add webhook subscription", form=form)
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in FILTER_FIELDS if name in form.cleaned_data}
        if change:
            subscription_update(subscription=obj, **{name: data[name] for name in form.changed_data if name in data})
            return
        created = subscription_create(status_model=form.status_model, actor=request.user, **data)
        obj.pk, obj.secret, obj.created_at, obj.created_by = (
            created.pk,
            created.secret,
            created.created_at,
            request.user,
        )
        obj._state.adding, obj._state.db = False, created._state.db

    def response_add(self, request, obj, post_url_continue=None):
        self._show_secret(request, obj.secret, "made")
        return super().response_add(request, obj, post_url_continue)

    def _show_secret(self, request, secret: str, done: str) -> None:
        self.message_user(
            request,
            format_html(
                "The endpoint's signing secret was {}; it is shown this once, so copy it to the receiver now: "
                '<code class="webhook-secret">{}</code>',
                done,
                secret,
            ),
            messages.WARNING,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, object_id)
        may_act = subscription is not None and self.has_change_permission(request, subscription)
        extra_context = {**(extra_context or {}), "may_act": may_act}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- Actions on one subscription ---------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/rotate-secret/", view(self.rotate_view), name="tracking_webhook_rotate"),
            path("<path:object_id>/send-test/", view(require_POST(self.send_test_view)), name="tracking_webhook_test"),
            path("<path:object_id>/enable/", view(require_POST(self.enable_view)), name="tracking_webhook_enable"),
            *super().get_urls(),
        ]

    def _subscription_to_act_on(self, request, object_id) -> WebhookSubscription:
        subscription = self.get_object(request, object_id)
        if subscription is None:
            raise Http404("No such webhook subscription.")
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        return subscription

    def _back(self, subscription) -> HttpResponseRedirect:
        return redirect("admin:tracking_webhooksubscription_change", subscription.pk)

    def _page(self, request, template: str, **context):
        return TemplateResponse(
            request,
            f"admin/tracking/webhooksubscription/{template}",
            {**self.admin_site.each_context(request), "opts": self.opts, **context},
        )

    def rotate_view(self, request, object_id):
        subscription = self._subscription_to_act_on(request, object_id)
        form = RotateSecretForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            overlap = timedelta(hours=form.cleaned_data["overlap_hours"])
            self._show_secret(
                request, subscription_rotate_secret(subscription=subscription, overlap=overlap), "rotated"
            )
            return self._back(subscription)
        return self._page(
            request,
            "rotate.html",
            title=f"Rotate the secret of {subscription.url}",
            subscription=subscription,
            form=form,
        )

    def send_test_view(self, request, object_id):
        subscription = self._subscription_to_act_on(request, object_id)
        message_id, sent = subscription_send_test(subscription=subscription)
        if sent.ok:
            self.message_user(
                request,
                f"Test event {message_id} delivered: {sent.status_code} in {sent.latency_ms} ms.",
                messages.SUCCESS,
            )
        else:
            answer = f"answered {sent.status_code}" if sent.status_code is not None else sent.error
            excerpt = f" — {sent.body_excerpt[:200]}" if sent.body_excerpt else ""
            self.message_user(request, f"Test event {message_id} not delivered: {answer}{excerpt}", messages.ERROR)
        return self._back(subscription)

    def enable_view(self, request, object_id):
        subscription = self._subscription_to_act_on(request, object_id)
        if not subscription.is_active:
            subscription_enable(subscription=subscription)
            self.message_user(
                request, "Enabled again: what was kept meanwhile is sent within a minute, in order.", messages.SUCCESS
            )
        return self._back(subscription)


def _last_attempt(field: str):
    latest = DeliveryAttempt.objects.filter(notification=OuterRef("pk")).order_by("-id").values(field)[:1]
    return Subquery(latest)


class SubscriptionListFilter(admin.SimpleListFilter):
    title = "endpoint"
    parameter_name = "subscription__id__exact"

    def lookups(self, request, model_admin):
        return [(str(s.pk), f"{s.model.key} → {s.url}") for s in WebhookSubscription.objects.select_related("model")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(subscription_id=self.value())
        return queryset


class NotificationModelFilter(StatusModelListFilter):
    parameter_name = "subscription__model__id__exact"

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(subscription__model_id=self.value())
        return queryset


class LastAnswerFilter(admin.SimpleListFilter):
    title = "last answer"
    parameter_name = "answer"

    def lookups(self, request, model_admin):
        return [("2xx", "2xx"), ("error", "Another code, or none"), ("none", "Not tried yet")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "2xx":
            return queryset.filter(last_status_code__gte=200, last_status_code__lt=300)
        if value == "error":
            return queryset.filter(attempts_made=True).exclude(last_status_code__gte=200, last_status_code__lt=300)
        if value == "none":
            return queryset.filter(attempts_made=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The delivery log: each notification with its last answer; its page has every try."""

    # Short columns, so that the log fits 1280 px beside its filters; a notification's page has it all.
    list_display = [
        "created_at",
        "endpoint",
        "transaction",
        "kind_key",
        "status_word",
        "attempts",
        "last_code",
        "last_excerpt",
    ]
    list_filter = ["status", "kind", LastAnswerFilter, NotificationModelFilter, SubscriptionListFilter, "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["instance__transaction_id"]
    search_help_text = "A transaction id."
    list_select_related = ["subscription", "instance"]
    show_full_result_count = False
    actions = ["redeliver_selected"]
    fields = [
        "webhook_id",
        "endpoint",
        "transaction",
        "kind",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "payload_shown",
        "attempts_shown",
    ]
    readonly_fields = fields

    class Media:
        css = {"all": ["tracking/admin_lists.css", "tracking/webhooks.css"]}

    def get_queryset(self, request):
        from django.db.models import Exists

        return (
            super()
            .get_queryset(request)
            .annotate(
                last_status_code=_last_attempt("status_code"),
                last_latency_ms=_last_attempt("latency_ms"),
                last_response=_last_attempt("response_excerpt"),
                last_error=_last_attempt("error"),
                attempts_made=Exists(DeliveryAttempt.objects.filter(notification=OuterRef("pk"))),
            )
        )

    def has_view_permission(self, request, obj=None):
        return _may(request, "tracking.view_notification")

    def has_delete_permission(self, request, obj=None):
        return False  # the log is kept; deleting its subscription deletes it

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm(MANAGE_WEBHOOKS)

    @admin.display(description="Endpoint", ordering="subscription__url")
    def endpoint(self, obj):
        url = reverse("admin:tracking_webhooksubscription_change", args=[obj.subscription_id])
        return format_html('<a href="{}">{}</a>', url, shortened(obj.subscription.url.split("://", 1)[-1], 28))

    @admin.display(description="Transaction", ordering="instance__transaction_id")
    def transaction(self, obj):
        return shortened(obj.instance.transaction_id, 24)

    @admin.display(description="Kind", ordering="kind")
    def kind_key(self, obj):
        return obj.kind

    @admin.display(description="Status", ordering="status")
    def status_word(self, obj):
        return {DeliveryStatus.GAVE_UP: "given up"}.get(obj.status, obj.status)

    @admin.display(description="Last code", ordering="last_status_code")
    def last_code(self, obj):
        if obj.last_latency_ms is None:
            return "-"
        return f"{obj.last_status_code or 'none'}, {obj.last_latency_ms} ms"

    @admin.display(description="Last answer")
    def last_excerpt(self, obj):
        return shortened(obj.last_error or obj.last_response or "", 40) or "-"

    @admin.display(description="webhook-id")
    def webhook_id(self, obj):
        return obj.webhook_id

    @admin.display(description="Payload")
    def payload_shown(self, obj):
        return format_html(
            '<pre class="webhook-payload">{}</pre>', json.dumps(obj.payload, indent=2, ensure_ascii=False)
        )

    @admin.display(description="Tries")
    def attempts_shown(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{attempt.at:%Y-%m-%d %H:%M:%S}",
                    "by hand" if attempt.manual else "worker",
                    attempt.status_code or "none",
                    f"{attempt.latency_ms} ms" if attempt.latency_ms is not None else "-",
                    attempt.error or attempt.response_excerpt or "-",
                )
                for attempt in obj.delivery_attempts.all()
            ),
        )
        if not rows:
            return "Not tried yet."
        return format_html(
            '<div class="webhook-tries"><table><thead><tr><th scope="col">When (UTC)</th><th scope="col">Sent</th>'
            '<th scope="col">Code</th><th scope="col">Latency</th><th scope="col">Answer</th></tr></thead>'
            "<tbody>{}</tbody></table></div>",
            rows,
        )

    @admin.action(description="Send the selected notifications again now", permissions=["redeliver"])
    def redeliver_selected(self, request, queryset):
        results = notifications_redeliver(notification_ids=list(queryset.values_list("pk", flat=True)))
        delivered = sum(1 for r in results if r.sent is not None and r.sent.ok)
        failed = [r for r in results if r.sent is not None and not r.sent.ok]
        busy = sum(1 for r in results if r.sent is None)
        words = [f"{delivered} delivered"]
        if failed:
            first = failed[0].sent
            why = f"{first.status_code}" if first.status_code is not None else first.error
            words.append(f"{len(failed)} not delivered (the first: {why})")
        if busy:
            words.append(f"{busy} being sent by a worker just then, left to it")
        level = messages.SUCCESS if not failed else messages.WARNING
        self.message_user(request, "Sent again: " + "; ".join(words) + ".", level)
