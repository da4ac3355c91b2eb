"""Writes of API access: creating a token."""

from api_access.models import ApiToken, hash_token


def token_create(*, name: str, user, can_produce: bool, can_read: bool):
    """A new API token; returns (token, key). Only the key's hash is stored."""
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        name=name, user=user, key_hash=hash_token(key), prefix=key[:8], can_produce=can_produce, can_read=can_read
    )
    return token, key
