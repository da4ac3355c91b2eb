"""The customer page's neutral step at a branch, and the staff preview, in German."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from models_registry.services import draft_save, model_import
from tests.events import ingest
from tests.loan_models import DELIVERY, LOAN, ROUTES
from tests.tracking.test_customer_page import path_of, text
from tests.tracking.test_fsm import apply_all
from tracking.models import ProcessInstance
from tracking.progress.links import instance_tracking_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def instance_after(document: dict, *event_types: str) -> ProcessInstance:
    model_import(document=document)
    ingest(
        *[
            {
                "event_id": f"{document['id']}-{i}",
                "model_id": document["id"],
                "transaction_id": "T-1",
                "event_type": event_type,
                "occurred_at": f"2026-11-26T10:0{i}:00Z",
                "data": {},
            }
            for i, event_type in enumerate(event_types)
        ]
    )
    assert not apply_all().failed
    return ProcessInstance.objects.get(model__key=document["id"], transaction_id="T-1")


@pytest.mark.parametrize(
    ("document", "event_types", "english", "german"),
    [
        (
            LOAN,
            ["loan.applied", "review.started"],
            "Decision Upcoming Approved or Declined",
            "Entscheidung Ausstehend Approved oder Declined",
        ),
        (
            DELIVERY,
            ["start", "ship"],
            "Outcome Upcoming Delivered or Collected at the shop",
            "Ergebnis Ausstehend Delivered oder Collected at the shop",
        ),
        (
            ROUTES,
            ["start"],
            "Depends on your case Upcoming Quick fix or Sent to the workshop",
            "Hängt von Ihrem Fall ab Ausstehend Quick fix oder Sent to the workshop",
        ),
    ],
    ids=["decision", "outcome", "route"],
)
def test_the_neutral_step_speaks_german(client, document, event_types, english, german):
    instance = instance_after(document, *event_types)
    url = path_of(instance_tracking_url(instance=instance))

    in_english = text(client.get(url))
    in_german = text(client.get(url, HTTP_ACCEPT_LANGUAGE="de"))

    assert english in in_english
    assert german in in_german
    for english_words in ("Decision", "Outcome", "Depends on your case", " or "):
        assert english_words not in in_german


def test_the_preview_speaks_german(admin_client):
    model_import(document=LOAN)
    url = reverse("progress-preview", kwargs={"model_id": "loan"})

    page = text(admin_client.get(f"{url}?state=under_review&version=1", HTTP_ACCEPT_LANGUAGE="de"))

    assert "Vorschau – keine echte Anfrage" in page
    assert "Die Kundenseite von loan, version 1, für eine erfundene Anfrage." in page
    assert "Zustand" in page
    assert "Kontext (JSON)" in page
    assert "Anzeigen" in page
    assert "Entscheidung Ausstehend Approved oder Declined" in page


def test_the_preview_of_a_draft_that_cannot_be_shown_speaks_german(admin_client):
    draft_save(document={**LOAN, "initial_state": "nowhere"})
    url = reverse("progress-preview", kwargs={"model_id": "loan"})

    response = admin_client.get(f"{url}?version=draft", HTTP_ACCEPT_LANGUAGE="de")

    page = text(response)
    assert "Der Entwurf kann noch nicht angezeigt werden" in page
    assert "Die Veröffentlichung würde aus diesen Gründen scheitern" in page
    assert response.content.decode().count("Vorschau") >= 2  # the title and the bar
