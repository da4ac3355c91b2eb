"""The API's error format, for every endpoint of every app."""

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with every 400 as ``{"detail": ..., "errors": {field: [messages]}}``.

    Every error of the API then has a ``detail`` a person can read; every 400 also has ``errors``,
    with the field's path as the key and ``""`` for the request as a whole: a body that is not
    JSON (DRF's ``ParseError``), too large, or refused as a whole by a validator.
    """
    response = drf_exception_handler(exc, context)
    if response is None or response.status_code != status.HTTP_400_BAD_REQUEST:
        return response
    data = response.data
    if isinstance(exc, ValidationError) and isinstance(data, dict) and "detail" not in data:
        response.data = {"detail": "Invalid input.", "errors": data}
    elif isinstance(data, list):
        messages = [str(message) for message in data]
        response.data = {"detail": " ".join(messages), "errors": {"": messages}}
    elif isinstance(data, dict) and "errors" not in data:
        detail = str(data.get("detail", "Invalid input."))
        response.data = {"detail": detail, "errors": {"": [detail]}}
    return response
