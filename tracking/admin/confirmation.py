"""Admin actions behind a confirmation page: the first post of an action shows what it will do and
asks for a note; the confirmation posts the same selection back to the same action, which then acts.

The page posts to the list's own address, filters and all, so that "select all" across pages still
means the instances the filters chose; otherwise it carries the selected ids.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.template.response import TemplateResponse

CONFIRMED = "_confirmed"
SHOWN = 50  # objects named on the page; the rest are counted


class ConfirmForm(forms.Form):
    """Nothing to fill in: a retry leaves nothing to record (the worker gives the event its outcome)."""


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=400, help_text="Why; recorded with what changes.", widget=forms.TextInput(attrs={"size": 60})
    )


def confirmed_data(request):
    """The posted confirmation, or None when the action was only chosen in the list."""
    return request.POST if CONFIRMED in request.POST else None


def selection_fields(request, queryset: QuerySet) -> list[tuple[str, str]]:
    """The hidden fields that choose the same objects again when the confirmation is posted."""
    select_across = request.POST.get("select_across") == "1"
    pks = list(queryset.values_list("pk", flat=True)[:1] if select_across else queryset.values_list("pk", flat=True))
    return [
        ("action", request.POST.get("action", "")),
        ("select_across", "1" if select_across else "0"),
        *((helpers.ACTION_CHECKBOX_NAME, str(pk)) for pk in pks),
        (CONFIRMED, "1"),
    ]


def confirmation_page(
    model_admin,
    request,
    queryset: QuerySet,
    *,
    title: str,
    intro: str,
    form: forms.Form,
    submit: str,
    plan_headers: tuple[str, ...] = (),
    plan_rows: list[tuple] = (),
    template: str = "admin/tracking/confirm_action.html",
    **context,
) -> TemplateResponse:
    count = queryset.count()
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": title,
            "intro": intro,
            "form": form,
            "submit": submit,
            "plan_headers": plan_headers,
            "plan_rows": plan_rows,
            "objects": list(queryset[:SHOWN]),
            "more": max(count - SHOWN, 0),
            "count": count,
            "hidden": selection_fields(request, queryset),
            "back_url": request.get_full_path(),
            **context,
        },
    )
