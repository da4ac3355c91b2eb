"""``bootstrap_local``: the example model, an admin login and an API token for a local installation."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from api_access.services import token_create
from models_registry.services import model_import, parse_documents


class Command(BaseCommand):
    help = (
        "Prepare a local installation: import the example models, create an admin login and an API "
        "token, and print them. Safe to run again: the login is kept in var/local-login.txt."
    )

    def handle(self, *args, **options):
        examples = Path(settings.BASE_DIR) / "examples"
        for path in sorted(examples.glob("*.yaml")):
            for document in parse_documents(path.read_text(), filename=path.name):
                version, created = model_import(document=document)
                self.stdout.write(
                    f"model {version.model.key}: version {version.number}{' published' if created else ''}"
                )

        login_file = Path(settings.VAR_DIR) / "local-login.txt"
        if login_file.exists():
            self.stdout.write(login_file.read_text())
            return
        User = get_user_model()
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        _, key = token_create(name="local", user=user, can_produce=True, can_read=True)
        text = (
            f"admin login: http://127.0.0.1:{os.environ.get('PORT', '8000')}/admin/  user: admin  password: {password}\n"
            f"API token (producer and reader): {key}\n"
        )
        login_file.parent.mkdir(parents=True, exist_ok=True)
        login_file.write_text(text)
        login_file.chmod(0o600)
        self.stdout.write(text)
