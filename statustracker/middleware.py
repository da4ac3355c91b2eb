"""Middleware of the project as a whole."""

from __future__ import annotations

from django.http import Http404


class NulInPathMiddleware:
    """A URL path holding a NUL character (``%00``) names nothing: 404, before any view runs.

    URL patterns take ``str`` and ``path`` segments as they come, and a view hands them to the
    database as query parameters. PostgreSQL text cannot hold NUL, so psycopg refuses such a
    parameter (``DataError``) and the request failed with a 500 on PostgreSQL, while SQLite simply
    found no row. Refusing the path here answers the same 404 as an unknown address, on both
    databases and for every view, present and future. (Query strings and bodies go through DRF
    fields, which refuse NUL as a validation error.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info:
            raise Http404("No such page.")
        return self.get_response(request)
