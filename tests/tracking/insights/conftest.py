import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _no_figures_from_another_test(settings):
    # Figures are cached per model's primary key, which the next test's database may give again.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()
