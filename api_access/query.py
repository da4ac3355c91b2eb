"""Query-string filters of the API's read endpoints, validated as the schema describes them."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request


def validated_query(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The query parameters checked by ``serializer_class``; a 400 in the API's format when invalid.

    Each parameter is read as it was sent: DRF reads a query string like an HTML form, where an
    empty value (``?version=``) counts as absent, so such a request was answered as if unfiltered
    although the schema calls the value invalid. Here an empty value is checked like any other.
    """
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
