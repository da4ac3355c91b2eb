"""The Django app of status model definitions; loads the transition handlers at start-up."""

from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Status models"

    def ready(self) -> None:
        # Handlers register themselves when their module is imported.
        import_module("models_registry.handlers")
        for module in settings.STATUSTRACKER_HANDLER_MODULES:
            import_module(module)
