"""Scope permissions for API tokens.

A token carries scopes (``ApiToken.can_produce``, ``ApiToken.can_read``); importing model
definitions is not a token scope but a right of the token's user: staff, or the
``models_registry.edit_definitions`` permission. Without a valid token every check answers 401
(DRF turns a refused anonymous request into ``NotAuthenticated``); with a token that lacks the
scope, 403.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from api_access.models import ApiToken

EDIT_DEFINITIONS = "models_registry.edit_definitions"


def _token(request) -> ApiToken | None:
    token = getattr(request, "auth", None)
    return token if isinstance(token, ApiToken) else None


class CanProduceEvents(BasePermission):
    """Producer scope: may post events."""

    message = "This token does not have the producer scope (may post events)."

    def has_permission(self, request, view) -> bool:
        token = _token(request)
        return token is not None and token.can_produce


class CanRead(BasePermission):
    """Reader scope: may read instances and models."""

    message = "This token does not have the reader scope (may read instances and models)."

    def has_permission(self, request, view) -> bool:
        token = _token(request)
        return token is not None and token.can_read


class CanEditDefinitions(BasePermission):
    """Model import: the token's user is staff or holds the definitions-editor permission."""

    message = f"Importing models needs a staff user or the {EDIT_DEFINITIONS!r} permission."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if _token(request) is None or not user or not user.is_active:
            return False
        return user.is_staff or user.has_perm(EDIT_DEFINITIONS)
