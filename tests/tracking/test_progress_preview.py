"""The staff preview of the customer page (tracking/progress/preview.py), through Django's test client."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from models_registry.definition import Definition, DefinitionError
from models_registry.services import model_import
from models_registry.validation import document_validate
from tests.loan_models import LOAN
from tracking.models import ProcessInstance

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan():
    version, _ = model_import(document=LOAN)
    return version


def preview_url(**query) -> str:
    url = reverse("progress-preview", kwargs={"model_id": "loan"})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def step_names(response) -> list[str]:
    return [
        re.sub(r"\s+", " ", html.unescape(m)).strip()
        for m in re.findall(r'<span class="step-name">([^<]*)</span>', response.content.decode())
    ]


def test_the_url_is_named_and_staff_only(client, django_user_model, loan):
    assert preview_url() == "/admin-preview/loan/"
    customer = django_user_model.objects.create_user("customer", password="pw")

    anonymous = client.get(preview_url(state="under_review"))
    client.force_login(customer)
    not_staff = client.get(preview_url(state="under_review"))

    for response in (anonymous, not_staff):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/admin-preview/loan/")


def test_staff_see_the_customer_page_with_a_preview_banner_and_a_state_picker(admin_client, loan):
    response = admin_client.get(preview_url(state="under_review", version="1"))
    content = response.content.decode()

    assert response.status_code == 200
    assert "Preview — not a real request" in content
    assert '<ol class="steps">' in content  # the customer's own template
    assert step_names(response) == ["Application received", "Under review", "Decision"]
    assert "Approved or Declined" in re.sub(r"\s+", " ", content)
    picker = re.search(r'<form class="preview-picker" method="get".*?</form>', content, flags=re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', picker) == [s["key"] for s in LOAN["states"]]
    assert '<option value="under_review" selected>Under review</option>' in picker
    assert ">Documents needed</option>" in picker
    # A preview does not poll, and touches no instance.
    assert "hx-get" not in content
    assert not ProcessInstance.objects.exists()
    assert "form-action 'self'" in response["Content-Security-Policy"]


def test_each_state_can_be_previewed(admin_client, loan):
    expected_last = {
        "applied": "Decision",
        "under_review": "Decision",
        "documents_needed": "Decision",
        "approved": "Approved",
        "declined": "Declined",
        "withdrawn": "Withdrawn",
    }
    for state, last in expected_last.items():
        response = admin_client.get(preview_url(state=state))
        assert response.status_code == 200, state
        assert step_names(response)[-1] == last, state
    assert "Documents needed" in admin_client.get(preview_url(state="documents_needed")).content.decode()


def test_without_a_state_the_initial_one_is_shown(admin_client, loan):
    response = admin_client.get(preview_url())

    assert '<option value="applied" selected>' in response.content.decode()
    assert 'aria-current="step"' in response.content.decode()


def test_an_unknown_state_is_a_clear_404_with_the_picker(admin_client, loan):
    response = admin_client.get(preview_url(state="aproved"))

    assert response.status_code == 404
    assert "This model has no state “aproved”" in response.content.decode()
    assert '<select id="preview-state" name="state">' in response.content.decode()


def test_unknown_models_and_versions_are_404(admin_client, loan):
    assert admin_client.get(reverse("progress-preview", kwargs={"model_id": "nope"})).status_code == 404
    assert admin_client.get(preview_url(version="7")).status_code == 404
    assert admin_client.get(preview_url(version="latest")).status_code == 404
    assert admin_client.get(
        reverse("progress-preview", kwargs={"model_id": "nope"}) + "?version=draft"
    ).status_code == (404)


def test_the_draft_is_previewed_through_draft_definition(admin_client, loan):
    response = admin_client.get(preview_url(state="under_review", version="draft"))

    assert response.status_code == 200
    assert "loan, draft" in response.content.decode()
    assert '<input type="hidden" name="version" value="draft">' in response.content.decode()
    assert step_names(response) == ["Application received", "Under review", "Decision"]


def test_draft_and_version_show_their_own_definition(admin_client, loan, monkeypatch):
    # The draft's storage is not this view's business: it asks draft_definition(key=...) only.
    draft = {**LOAN, "states": [{**s, "label": s["label"].upper()} for s in LOAN["states"]]}
    asked = []

    def draft_definition(*, key):
        asked.append(key)
        return Definition.from_document(document_validate(draft))

    monkeypatch.setattr("tracking.progress.preview.draft_definition", draft_definition)

    from_draft = admin_client.get(preview_url(state="approved", version="draft"))
    from_version = admin_client.get(preview_url(state="approved", version="1"))

    assert asked == ["loan"]
    assert step_names(from_draft) == ["APPLICATION RECEIVED", "UNDER REVIEW", "APPROVED"]
    assert step_names(from_version) == ["Application received", "Under review", "Approved"]


def test_a_draft_that_cannot_be_published_shows_its_problems_in_words(admin_client, loan, monkeypatch):
    def draft_definition(*, key):
        raise DefinitionError({"transitions[1].to": ["Unknown state key 'aproved'."]})

    monkeypatch.setattr("tracking.progress.preview.draft_definition", draft_definition)

    response = admin_client.get(preview_url(state="approved", version="draft"))
    content = html.unescape(response.content.decode())

    assert response.status_code == 200
    assert "The draft cannot be shown yet" in content
    assert "Transition 2 (documents.requested): 'aproved' is not a state of this model." in content
    assert '<ol class="steps">' not in content


def test_a_context_fills_the_display_fields(admin_client):
    model_import(document={**LOAN, "display": [{"field": "amount", "label": "Amount"}]})

    shown = admin_client.get(preview_url(state="under_review", context='{"amount":"5000 EUR"}'))
    broken = admin_client.get(preview_url(state="under_review", context="[1"))

    assert "5000 EUR" in shown.content.decode()
    assert broken.status_code == 200
    assert "The context must be a JSON object" in html.unescape(broken.content.decode())
