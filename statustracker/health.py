"""``/healthz`` for load balancers and supervisors: is the database answering, is the broker reachable?"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from kombu import Connection
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

HEALTH_CHECK_TIMEOUT_SECONDS = 2
HEALTH_STATUS_CHOICES = ["ok", "unavailable"]


def _database_check() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _broker_check() -> str:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=HEALTH_CHECK_TIMEOUT_SECONDS
    ) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=HEALTH_CHECK_TIMEOUT_SECONDS)
        if broker.transport_cls == "filesystem":
            # The filesystem transport "connects" to anything; its folders are what must work.
            for key in ("data_folder_in", "data_folder_out"):
                folder = options.get(key)
                if not folder or not os.access(folder, os.W_OK):
                    raise OSError(f"broker folder {folder!r} is missing or not writable")
    return "ok"


class HealthCheckApi(APIView):
    """For load balancers and supervisors: is the database answering, is the broker reachable?"""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Load balancers probe often, from few addresses: never rate limited.
    throttle_classes: list = []

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=HEALTH_STATUS_CHOICES)
        database = serializers.CharField(help_text="'ok' or the error.")
        broker = serializers.CharField(help_text="'ok' or the error.")

        class Meta:
            ref_name = "Health"

    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        summary="Health check",
        auth=[],
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(OutputSerializer, description="The database or the broker failed."),
        },
    )
    def get(self, request):
        checks = {}
        for name, check in (("database", _database_check), ("broker", _broker_check)):
            try:
                checks[name] = check()
            except Exception as exc:  # a health check reports every failure, whatever it is
                logger.warning("health check: %s failed: %s", name, exc)
                checks[name] = f"error: {type(exc).__name__}: {exc}"
        healthy = all(value == "ok" for value in checks.values())
        return Response(
            self.OutputSerializer({"status": "ok" if healthy else "unavailable", **checks}).data,
            status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )
