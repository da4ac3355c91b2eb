"""The request path as the client sent it, before the server decoded it.

A path parameter that may hold a ``/`` (a transaction id) is sent percent-encoded (``%2F``), as
OpenAPI clients encode path parameters, but WSGI servers decode ``%2F`` before Django routes the
path, so ``ORD%2Fevents`` and ``ORD/events`` look alike to a URL pattern. Most servers keep the path
as sent beside it: gunicorn (``RAW_URI``), uWSGI and mod_wsgi (``REQUEST_URI``), ASGI servers
(``raw_path``). Django's development server and test client do not.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def raw_request_path(request) -> str | None:
    """The path of the request line, percent-encoding intact; None when the server does not keep it."""
    meta = request.META
    uri = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if uri:
        if uri.startswith("/"):
            return uri.split("?", 1)[0].split("#", 1)[0]
        return urlsplit(uri).path  # the absolute form, http://host/path
    raw_path = getattr(request, "scope", {}).get("raw_path")
    if raw_path:
        return raw_path.decode("latin-1")
    return None
