"""The Django app of API access: the token model and its admin."""

from django.apps import AppConfig


class ApiAccessConfig(AppConfig):
    name = "api_access"
    verbose_name = "API access"
