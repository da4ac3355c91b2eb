"""The API's error format, for every endpoint of every app."""

from rest_framework.exceptions import ValidationError
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with validation errors as ``{"detail": ..., "errors": {field: [messages]}}``.

    Every error of the API then has a ``detail`` a person can read; field errors sit under
    ``errors`` with the field's path as the key.
    """
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        if isinstance(response.data, dict) and "detail" not in response.data:
            response.data = {"detail": "Invalid input.", "errors": response.data}
        elif isinstance(response.data, list):
            response.data = {"detail": " ".join(str(message) for message in response.data)}
    return response
