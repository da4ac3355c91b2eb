"""``GET /api/v1/models/{id}/event-log``: the model's instances' histories as an event log (readers)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from api_access.permissions import CanRead
from api_access.query import validated_query
from tracking.insights.event_log import FORMATS
from tracking.insights.selectors import dashboard_scope
from tracking.insights.views import event_log_response


class _FormatIsTheLogs(DefaultContentNegotiation):
    """``?format=`` names the log's format here, not one of DRF's renderers: errors stay JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ModelEventLogApi(APIView):
    """Readers download the histories of a model's instances for process-mining tools."""

    permission_classes = [CanRead]
    content_negotiation_class = _FormatIsTheLogs

    class FilterSerializer(serializers.Serializer):
        format = serializers.ChoiceField(
            choices=list(FORMATS),
            help_text="xes: IEEE 1849-2016 XES; ocel: OCEL 2.0 JSON (one object per transaction); csv: one row per "
            "event with a header row.",
        )
        version = serializers.IntegerField(
            required=False, min_value=1, max_value=2147483647, help_text="Only instances of this version."
        )
        window = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=36500,
            help_text="Only instances started in the last this many days. Default: all.",
        )

        class Meta:
            ref_name = "EventLogFilter"

    @extend_schema(
        operation_id="models_event_log",
        tags=["models"],
        summary="A model's event log",
        description=(
            "The histories of the model's started instances as an event log, one case per transaction and one "
            "event per transition, in the order applied: the activity is the state entered, the time when the "
            "source system saw the event. Streamed; the same log as `manage.py export_event_log` and the "
            "dashboard's download. Needs the reader scope."
        ),
        parameters=[FilterSerializer],
        responses={
            (200, "application/xml"): OpenApiResponse(OpenApiTypes.STR, description="XES"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="OCEL 2.0 JSON"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            400: OpenApiResponse(description="A parameter is invalid."),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No such model, or no such version of it."),
        },
    )
    def get(self, request, model_id: str):
        query = validated_query(self.FilterSerializer, request)
        scope = dashboard_scope(model_key=model_id, version=query.get("version"), window_days=query.get("window"))
        if scope is None:
            raise NotFound(
                f"No model {model_id!r}" + (f" with version {query['version']}." if "version" in query else ".")
            )
        return event_log_response(scope, query["format"])
