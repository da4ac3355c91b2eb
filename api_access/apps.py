"""The Django app of API access: the token model and its admin."""

from django.apps import AppConfig


class ApiAccessConfig(AppConfig):
    name = "api_access"
    verbose_name = "API access"

    def ready(self):
        # Registers the system check of the rate limits.
        from api_access import throttling  # noqa: F401
