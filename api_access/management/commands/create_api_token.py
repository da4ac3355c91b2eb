"""``create_api_token``: a new API token for a user, its key printed once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api_access.services import token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key. The key is shown this once: only its hash "
        "is stored. --produce lets the token post events, --read lets it read models and instances; "
        "importing models depends on the user (staff, or the models_registry.edit_definitions "
        "permission), not on the token. Revoke tokens in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'billing producer'.")
        parser.add_argument("--user", required=True, help="Username of the token's owner.")
        parser.add_argument("--produce", action="store_true", help="Producer scope: may post events.")
        parser.add_argument("--read", action="store_true", help="Reader scope: may read instances and models.")

    def handle(self, *args, name, user, produce, read, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(**{User.USERNAME_FIELD: user})
        except User.DoesNotExist:
            raise CommandError(f"no user {user!r} (create one with createsuperuser or in the admin)") from None
        if not owner.is_active:
            raise CommandError(f"user {user!r} is inactive")
        if not (produce or read):
            self.stderr.write("warning: the token has no scope; it can only import models if its user may.")
        token, key = token_create(name=name, user=owner, can_produce=produce, can_read=read)
        scopes = ", ".join(scope for scope, on in (("produce", produce), ("read", read)) if on) or "none"
        self.stderr.write(f"token {token.name!r} ({token.prefix}…) for {user}, scopes: {scopes}")
        # The key alone on stdout, so that scripts can capture it: KEY=$(manage.py create_api_token ...)
        self.stdout.write(key)
