"""Dead letters: input that was rejected, with where it came from and why; replayed through ingestion
(as received or edited) or discarded with a reason, one at a time or a filtered selection at once."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from tracking.admin.common import ReadOnlyAdminMixin, shortened
from tracking.models import DeadLetter, InboxEvent, ReplayOutcome
from tracking.operations.dead_letters import (
    INVALID,
    NOT_OPEN,
    OPEN,
    REASON_CHOICES,
    STATUS_CHOICES,
    ReplayResult,
    dead_letter_body_problems,
    dead_letter_replay,
    dead_letters_discard,
    dead_letters_replay,
    dead_letters_with_reason,
    dead_letters_with_status,
    editable_body,
    edited_body,
    raw_preview,
)

REPLAY_PERMISSION = "tracking.replay_deadletter"
DISCARD_PERMISSION = "tracking.discard_deadletter"
ALL = "all"
# The letters a confirmation page lists by name; the rest are counted.
LISTED = 20


class StatusListFilter(admin.SimpleListFilter):
    """Open letters by default: the operator's work list. Replayed and discarded ones a click away."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*STATUS_CHOICES, (ALL, "All")]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or OPEN) == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or OPEN
        return queryset if value == ALL else dead_letters_with_status(queryset, value)


class ReasonListFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return REASON_CHOICES

    def queryset(self, request, queryset):
        return dead_letters_with_reason(queryset, self.value()) if self.value() else queryset


class ReplayForm(forms.Form):
    """The event to replay, as JSON; its problems are said under it, by field, in ingestion's words."""

    body = forms.CharField(
        label="Event (JSON)",
        strip=False,
        widget=forms.Textarea(attrs={"class": "dead-letter-body", "rows": 18, "spellcheck": "false"}),
    )

    def __init__(self, *args, letter: DeadLetter, **kwargs):
        super().__init__(*args, **kwargs)
        self.letter = letter

    def clean_body(self) -> bytes:
        body = edited_body(self.cleaned_data["body"])
        problems = dead_letter_body_problems(letter=self.letter, body=body)
        if problems:
            raise forms.ValidationError([problem_words(field, reason) for field, reason in problems])
        return body


class DiscardForm(forms.Form):
    reason = forms.CharField(
        label="Why it is discarded",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "class": "dead-letter-reason"}),
        help_text="Recorded with your name; the dead letter stays, marked discarded.",
    )


def problem_words(field: str, reason: str) -> str:
    return f"{field}: {reason}" if field else f"the event as a whole: {reason}"


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Where from and why, cut short so that the list fits 1280 px; the dead letter's page has all of it.
    list_display = ["received_at", "source_kind", "short_source_ref", "field", "short_reason", "handled"]
    list_display_links = ["received_at"]
    list_filter = [StatusListFilter, ReasonListFilter, "source_kind", "field", "received_at"]
    date_hierarchy = "received_at"
    search_fields = ["source_ref", "reason"]
    search_help_text = "Words of the reason, or of where it came from (a file and line, a Kinesis record)."
    list_select_related = ["replayed_by", "discarded_by"]
    show_full_result_count = False
    actions = ["replay_selected", "discard_selected"]
    change_form_template = "admin/tracking/deadletter/change_form.html"
    fieldsets = [
        (None, {"fields": ["received_at", "source_kind", "source_ref", "field", "reason", "replay_of_link"]}),
        ("Raw input", {"fields": ["raw_shown"]}),
        ("What was done", {"fields": ["handled_in_words", "replayed_body"]}),
    ]
    readonly_fields = ["replay_of_link", "raw_shown", "handled_in_words", "replayed_body"]

    class Media:
        css = {"all": ["tracking/admin_lists.css", "tracking/dead_letters.css"]}

    # --- Permissions: viewing is Django's view permission; each action has its own -------------

    def has_delete_permission(self, request, obj=None):
        # A dead letter is the record of what was refused and what became of it: it is discarded,
        # with a reason, rather than deleted.
        return False

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    def has_discard_permission(self, request) -> bool:
        return request.user.has_perm(DISCARD_PERMISSION)

    # --- The list ------------------------------------------------------------------------------

    @admin.display(description="source ref", ordering="source_ref")
    def short_source_ref(self, obj):
        return shortened(obj.source_ref, 40)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return shortened(obj.reason, 60)

    @admin.display(description="status")
    def handled(self, obj):
        if obj.replayed_at is not None:
            return f"Replayed: {obj.replay_outcome}"
        return "Discarded" if obj.discarded_at is not None else "Open"

    # --- The dead letter's page ----------------------------------------------------------------

    @admin.display(description="Replay of")
    def replay_of_link(self, obj):
        if obj.replay_of_id is None:
            return "-"
        url = reverse("admin:tracking_deadletter_change", args=[obj.replay_of_id])
        return format_html('<a href="{}">Dead letter #{}</a>, refused again when replayed', url, obj.replay_of_id)

    @admin.display(description="Raw input")
    def raw_shown(self, obj):
        preview = raw_preview(bytes(obj.raw))
        kind = "text (UTF-8)" if preview.text is not None else "a hex dump: these bytes are not UTF-8 text"
        note = f"{preview.size} bytes, shown as {kind}."
        if preview.truncated:
            note = f"{preview.size} bytes, shown as {kind}; only the beginning is shown (the API's detail has all)."
        return format_html(
            '<p class="dead-letter-raw-note">{}</p><pre class="dead-letter-raw {}">{}</pre>',
            note,
            "dead-letter-text" if preview.text is not None else "dead-letter-hex",
            preview.text if preview.text is not None else preview.hex_dump,
        )

    @admin.display(description="Status")
    def handled_in_words(self, obj):
        if obj.discarded_at is not None:
            return format_html(
                "Discarded on {} by {}: {}", _when(obj.discarded_at), _name(obj.discarded_by), obj.discard_reason
            )
        if obj.replayed_at is None:
            return "Open: neither replayed nor discarded."
        words = format_html(
            "Replayed on {} by {}{}: {}.",
            _when(obj.replayed_at),
            _name(obj.replayed_by),
            " (edited)" if obj.replayed_raw is not None else "",
            ReplayOutcome(obj.replay_outcome).label,
        )
        event_pk = InboxEvent.objects.filter(event_id=obj.replay_event_id).values_list("pk", flat=True).first()
        if event_pk is not None:
            url = reverse("admin:tracking_inboxevent_change", args=[event_pk])
            words = format_html('{} Inbox event <a href="{}">{}</a>.', words, url, obj.replay_event_id)
        if obj.replay_detail:
            words = format_html("{} {}", words, obj.replay_detail)
        again = format_html_join(
            ", ",
            '<a href="{}">dead letter #{}</a>',
            ((reverse("admin:tracking_deadletter_change", args=[pk]), pk) for pk in _rejected_replays(obj)),
        )
        if again:
            words = format_html("{} Kept as {}.", words, again)
        return words

    @admin.display(description="Body replayed")
    def replayed_body(self, obj):
        if obj.replayed_raw is None:
            return "-" if obj.replayed_at is None else "The raw input, as received."
        preview = raw_preview(bytes(obj.replayed_raw))
        return format_html('<pre class="dead-letter-raw dead-letter-text">{}</pre>', preview.text or preview.hex_dump)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        letter = self.get_object(request, object_id)
        is_open = letter is not None and letter.is_open
        extra_context = {
            **(extra_context or {}),
            "can_replay": is_open and self.has_replay_permission(request),
            "can_discard": is_open and self.has_discard_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/replay/", view(self.replay_view), name="tracking_deadletter_replay"),
            path("<path:object_id>/discard/", view(self.discard_view), name="tracking_deadletter_discard"),
            *super().get_urls(),
        ]

    def _letter_to_act_on(self, request, object_id, *, allowed: bool):
        """The letter and, when it is no longer open, the answer that says so instead of acting."""
        if not allowed:
            raise PermissionDenied
        letter = self.get_object(request, object_id)
        if letter is None:
            raise Http404("No such dead letter.")
        if letter.is_open:
            return letter, None
        self.message_user(request, f"{letter} was replayed or discarded before.", messages.WARNING)
        return letter, redirect("admin:tracking_deadletter_change", letter.pk)

    def _page(self, request, template: str, letter: DeadLetter | None = None, **context):
        return TemplateResponse(
            request,
            f"admin/tracking/deadletter/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "letter": letter,
                "title": context.pop("title"),
                **context,
            },
        )

    def replay_view(self, request, object_id):
        """Edit the event and replay it; "Check" says what ingestion would find without sending it."""
        letter, closed = self._letter_to_act_on(request, object_id, allowed=self.has_replay_permission(request))
        if closed:
            return closed
        checked = False
        if request.method == "POST":
            form = ReplayForm(request.POST, letter=letter)
            if form.is_valid():
                if "_check" not in request.POST:
                    result = dead_letter_replay(
                        dead_letter_id=letter.pk, actor=request.user, body=form.cleaned_data["body"]
                    )
                    return self._replayed(request, result, form)
                checked = True
        else:
            form = ReplayForm(initial={"body": editable_body(bytes(letter.raw))}, letter=letter)
        return self._page(
            request,
            "replay.html",
            letter,
            title=f"Replay dead letter #{letter.pk}",
            form=form,
            checked=checked,
            already_stored=_already_stored(form) if checked else None,
        )

    def _replayed(self, request, result: ReplayResult, form: ReplayForm):
        letter_url = reverse("admin:tracking_deadletter_change", args=[result.dead_letter_id])
        if result.outcome == INVALID:  # changed since the form was checked (a model withdrawn, say)
            for field, reason in result.problems:
                form.add_error("body", problem_words(field, reason))
            return self._page(
                request, "replay.html", form.letter, title=f"Replay dead letter #{form.letter.pk}", form=form
            )
        level, words = _result_words(result)
        self.message_user(request, words, level)
        if result.new_dead_letter_id is not None:
            return redirect("admin:tracking_deadletter_change", result.new_dead_letter_id)
        return redirect(letter_url)

    def discard_view(self, request, object_id):
        letter, closed = self._letter_to_act_on(request, object_id, allowed=self.has_discard_permission(request))
        if closed:
            return closed
        form = DiscardForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            count = dead_letters_discard(
                dead_letter_ids=[letter.pk], actor=request.user, reason=form.cleaned_data["reason"]
            )
            self.message_user(request, f"{letter} discarded." if count else f"{letter} was handled meanwhile.")
            return redirect("admin:tracking_deadletter_change", letter.pk)
        return self._page(request, "discard.html", letter, title=f"Discard dead letter #{letter.pk}", form=form)

    # --- Actions on a selection, each behind a confirmation page ------------------------------

    def _confirmation(self, request, queryset, *, template: str, title: str, form=None):
        open_letters = dead_letters_with_status(queryset, OPEN)
        count = open_letters.count()
        return self._page(
            request,
            template,
            title=title,
            count=count,
            handled=queryset.count() - count,
            listed=list(open_letters.order_by("pk")[:LISTED]),
            form=form,
            action=request.POST.get("action", ""),
            select_across=request.POST.get("select_across", "0"),
            selected=request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        )

    @admin.action(description="Replay the selected dead letters (as received)", permissions=["replay"])
    def replay_selected(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return self._confirmation(
                request, queryset, template="replay_selected.html", title="Replay the selected dead letters"
            )
        results = dead_letters_replay(dead_letter_ids=queryset.values_list("pk", flat=True), actor=request.user)
        for level, words in _summary(results):
            self.message_user(request, words, level)
        return None

    @admin.action(description="Discard the selected dead letters", permissions=["discard"])
    def discard_selected(self, request, queryset):
        form = DiscardForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if not form.is_valid():
            return self._confirmation(
                request,
                queryset,
                template="discard_selected.html",
                title="Discard the selected dead letters",
                form=form,
            )
        count = dead_letters_discard(
            dead_letter_ids=queryset.values_list("pk", flat=True),
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        self.message_user(request, f"{count} dead letter(s) discarded.", messages.SUCCESS)
        return None


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _name(user) -> str:
    return user.get_username() if user is not None else "a deleted user"


def _rejected_replays(letter: DeadLetter) -> list[int]:
    return list(DeadLetter.objects.filter(replay_of=letter).order_by("pk").values_list("pk", flat=True))


def _already_stored(form: ReplayForm) -> str | None:
    """The checked body's event id when the inbox holds it already: the replay will be a duplicate
    (or a conflict, when the bodies differ)."""
    value = json.loads(form.cleaned_data["body"])
    event_id = value.get("id" if "specversion" in value else "event_id")
    if isinstance(event_id, str) and InboxEvent.objects.filter(event_id=event_id).exists():
        return event_id
    return None


def _result_words(result: ReplayResult) -> tuple[int, str]:
    letter = f"Dead letter #{result.dead_letter_id}"
    if result.outcome == ReplayOutcome.ACCEPTED:
        words = f"{letter} replayed: accepted into the inbox as event {result.event_id!r}."
        return (messages.WARNING, f"{words} Note: {result.warning}.") if result.warning else (messages.SUCCESS, words)
    if result.outcome == ReplayOutcome.DUPLICATE:
        return (
            messages.INFO,
            f"{letter} replayed: a duplicate. Event {result.event_id!r} was already in the inbox; nothing changed.",
        )
    if result.outcome == NOT_OPEN:
        return messages.WARNING, f"{letter} was replayed or discarded before; nothing was sent."
    problems = "; ".join(problem_words(field, reason) for field, reason in result.problems)
    if result.outcome == INVALID:
        return messages.ERROR, f"{letter} is still invalid and stays open: {problems}."
    kept = f" It is kept as dead letter #{result.new_dead_letter_id}." if result.new_dead_letter_id else ""
    return messages.ERROR, f"{letter} replayed, but ingestion refused it again ({result.outcome}): {problems}.{kept}"


def _summary(results: list[ReplayResult]) -> list[tuple[int, str]]:
    """Messages for a bulk replay: the counts, then the first few that did not go in, in words."""
    counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in {r.outcome for r in results}}
    if len(results) == 1:
        return [_result_words(results[0])]
    parts = [
        f"{counts.get(ReplayOutcome.ACCEPTED, 0)} accepted",
        f"{counts.get(ReplayOutcome.DUPLICATE, 0)} duplicate(s) of events already in the inbox",
    ]
    refused = counts.get(ReplayOutcome.CONFLICT, 0) + counts.get(ReplayOutcome.REJECTED, 0)
    if refused:
        parts.append(f"{refused} refused again (kept as new dead letters)")
    sent = sum(1 for r in results if r.sent)
    lines = [
        (
            messages.SUCCESS if sent == len(results) else messages.WARNING,
            f"{sent} dead letter(s) replayed: {', '.join(parts)}.",
        )
    ]
    if counts.get(INVALID):
        lines.append((messages.WARNING, f"{counts[INVALID]} still invalid, not replayed and kept open."))
    if counts.get(NOT_OPEN):
        lines.append((messages.INFO, f"{counts[NOT_OPEN]} had been replayed or discarded before; left as they were."))
    problems = [r for r in results if r.outcome in (INVALID, ReplayOutcome.CONFLICT, ReplayOutcome.REJECTED)]
    lines.extend(_result_words(r) for r in problems[:5])
    if len(problems) > 5:
        lines.append((messages.INFO, f"… and {len(problems) - 5} more; filter the list by status and reason."))
    return lines
