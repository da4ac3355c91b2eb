"""The completion estimate is cached in the shared cache, where every web process finds it."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.conftest import load_example_model
from tests.tracking.test_customer_page import order_at, page

pytestmark = pytest.mark.django_db


def test_a_page_view_leaves_the_versions_statistics_in_the_shared_cache(client):
    load_example_model()
    instance = order_at("ORD-ETA-1", "payment.captured")
    key = f"tracking:completion-stats:{instance.version_id}"
    cache.delete(key)

    assert page(client, instance).status_code == 200

    assert cache.get(key) == {}  # nothing completed yet: no milestone has statistics
