"""``bootstrap_local``: the example model, an admin login and an API token for a local installation,
and, when the development receiver is on, a webhook subscription that sends to it."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from api_access.services import token_create
from models_registry.models import StatusModel
from models_registry.services import model_import, parse_documents
from tracking.notify.dev_receiver import PAGE_PATH, RECEIVE_PATH, SUBSCRIPTION_DESCRIPTION
from tracking.notify.email_models import CustomerEmailSettings
from tracking.notify.emails import customer_email_settings_changed
from tracking.notify.models import WebhookSubscription

# The model simulate_traffic sends orders of (tracking/arrival/simulation.py).
SIMULATED_MODEL = "order-fulfilment"


class Command(BaseCommand):
    help = (
        "Prepare a local installation: import the example models, create an admin login and an API "
        "token, and print them. With STATUSTRACKER_DEV_RECEIVER on, also subscribe the development "
        "webhook receiver (/dev/webhooks/) to the example order model; with mails written as files, "
        "let the example orders' customers ask for email updates. Safe to run again: the login is "
        "kept in var/local-login.txt and the subscription is made once."
    )

    def handle(self, *args, **options):
        examples = Path(settings.BASE_DIR) / "examples"
        for path in sorted(examples.glob("*.yaml")):
            for document in parse_documents(path.read_text(), filename=path.name):
                version, created = model_import(document=document)
                self.stdout.write(
                    f"model {version.model.key}: version {version.number}{' published' if created else ''}"
                )
        base_url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        if settings.STATUSTRACKER_DEV_RECEIVER:
            self.subscribe_dev_receiver(base_url)
        if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
            self.offer_email_updates()
            self.stdout.write(
                f"mail (customers' updates, alerts): written as files to {getattr(settings, 'EMAIL_FILE_PATH', '')}"
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

    def offer_email_updates(self) -> None:
        """The simulated orders' pages offer "Email me about changes" (mails become files under var/);
        settings an operator changed in the admin are kept."""
        model = StatusModel.objects.filter(key=SIMULATED_MODEL).first()
        if model is not None:
            _, created = CustomerEmailSettings.objects.get_or_create(model=model)
            if created:
                customer_email_settings_changed()

    def subscribe_dev_receiver(self, base_url: str) -> None:
        """One subscription of the simulated model to the receiver, kept across runs; its URL follows PORT."""
        model = StatusModel.objects.filter(key=SIMULATED_MODEL).first()
        if model is None:
            return
        subscription, created = WebhookSubscription.objects.update_or_create(
            model=model,
            description=SUBSCRIPTION_DESCRIPTION,
            defaults={"url": base_url + RECEIVE_PATH},
            create_defaults={
                "url": base_url + RECEIVE_PATH,
                "kinds": ["transition"],
                "context_fields": ["carrier", "tracking_number"],
            },
        )
        state = "" if subscription.is_active else " (disabled in the admin: enable it to receive again)"
        self.stdout.write(
            f"webhooks: {model.key} notifications go to {subscription.url}{state}; "
            f"received: {base_url}{PAGE_PATH}{' (subscribed now)' if created else ''}"
        )
