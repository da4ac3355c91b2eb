"""API token authentication: ``Authorization: Token <key>`` (``Bearer`` is accepted too).

Only a SHA-256 hash of each key is stored (``ApiToken.key_hash``), so a leaked database does not
leak usable keys; a presented key is hashed and looked up by that hash. Revoked tokens and
inactive users are refused. What a token may do is decided by the scope permissions in
``api_access.permissions``.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from api_access.models import ApiToken, hash_token

# ``last_used_at`` is informative (which tokens are still in use); writing it on every request
# would turn each read into a write, so it is refreshed at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    """Authenticates with an ``ApiToken``; ``request.auth`` is the token, ``request.user`` its user.

    A request without credentials is left anonymous (the permission then answers 401 with a
    ``WWW-Authenticate: Token`` challenge, from ``authenticate_header``); a request with a wrong,
    revoked or malformed key is refused with 401 at once.
    """

    keyword = "Token"
    keywords = (b"token", b"bearer")
    model = ApiToken

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in self.keywords:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Token <key>'.")
        try:
            key = auth[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the key has invalid characters.") from None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str):
        try:
            token = ApiToken.objects.select_related("user").get(key_hash=hash_token(key))
        except ApiToken.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if token.revoked:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        self._touch(token)
        return token.user, token

    @staticmethod
    def _touch(token: ApiToken) -> None:
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            # A plain UPDATE of one column: no model save, no race with an admin editing the token.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
