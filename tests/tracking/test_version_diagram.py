"""A published version's admin page draws its diagram, with the instances in each state now."""

import json

import pytest
from django.contrib import admin
from django.urls import reverse

from models_registry.models import ModelVersion
from tests.conftest import ROOT, load_example_model
from tracking.apply.applier import instances_apply_pending
from tracking.arrival.ingest import RawEvent, events_ingest
from tracking.models import ProcessInstance
from tracking.progress.selectors import version_state_counts

pytestmark = pytest.mark.django_db


def orders(*events: tuple[str, str]) -> None:
    """(transaction, event type) pairs, applied."""
    items = [
        RawEvent({"event_id": f"e{i}", "model_id": "order-fulfilment", "transaction_id": tx, "event_type": kind})
        for i, (tx, kind) in enumerate(events)
    ]
    events_ingest(items=items, source_kind="api")
    instances_apply_pending(instance_ids=list(ProcessInstance.objects.values_list("pk", flat=True)))


def test_counts_are_per_state_of_started_instances_of_the_version():
    version = load_example_model()
    orders(
        ("A", "order.placed"),
        ("B", "order.placed"),
        ("B", "payment.captured"),
        ("C", "order.placed"),
        ("C", "payment.captured"),
        ("D", "payment.captured"),  # parked: no instance started, not counted
    )

    assert version_state_counts(version_id=version.pk) == {"received": 1, "paid": 2}


def test_the_version_page_has_the_diagram_with_counts(admin_client):
    version = load_example_model()
    orders(("A", "order.placed"), ("B", "order.placed"), ("B", "payment.captured"))

    page = admin_client.get(reverse("admin:models_registry_modelversion_change", args=[version.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "viz-global-3.31.0.js" in html
    assert "models_registry/diagram.js" in html
    assert "with the number of instances in each state now" in html
    dot = json.loads(html.split('<script id="model-diagram-dot" type="application/json">')[1].split("</script>")[0])
    assert "Order received\\n(received)\\n1 instance" in dot
    assert "Payment confirmed\\n(paid)\\n1 instance" in dot
    assert "Delivered\\n(delivered)\\n0 instances" in dot


def test_the_version_admin_is_the_registrys_with_counts_added():
    from models_registry.admin import ModelVersionAdmin

    registered = admin.site._registry[ModelVersion]
    assert isinstance(registered, ModelVersionAdmin)
    assert type(registered) is not ModelVersionAdmin


def test_the_vendored_viz_is_the_npm_package():
    """static/vendor/viz-global-<version>.js is a copy of the pinned npm package, not an edited file."""
    package = json.loads((ROOT / "package.json").read_text())["dependencies"]["@viz-js/viz"]
    installed = ROOT / "node_modules" / "@viz-js" / "viz"
    assert json.loads((installed / "package.json").read_text())["version"] == package, "run bin/setup (npm ci)"
    assert (ROOT / "static" / "vendor" / f"viz-global-{package}.js").read_bytes() == (
        installed / "dist" / "viz-global.js"
    ).read_bytes()
