"""``GET /api/v1/handlers``: the transition handlers a model may name, with what each does and reads.

The list is ``models_registry.handlers.handler_catalogue()``, the same one the admin's handler choice
shows: the built-in handlers and those of the modules in ``STATUSTRACKER_HANDLER_MODULES``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from api_access.pagination import ApiPagination
from api_access.permissions import CanRead
from models_registry.handlers import handler_catalogue


class HandlerListApi(APIView):
    """Readers list the registered transition handlers."""

    permission_classes = [CanRead]
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField(help_text="What a model's `handler` names.")
        description = serializers.CharField(allow_blank=True, help_text="What the handler does, for a person.")
        reads = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text=(
                "Event type (`*`: every type) -> the fields of the event's `data` the handler reads for it, "
                "dotted for nested ones, as its author declared them. Empty when none are declared; the "
                "fields that a model's own `when` and `set` expressions read are not listed."
            ),
        )

        class Meta:
            ref_name = "HandlerSummary"

    @extend_schema(
        operation_id="handlers_list",
        tags=["models"],
        summary="List handlers",
        description="The transition handlers a model's `handler` may name, by name. Needs the reader scope.",
        responses={
            200: OutputSerializer(many=True),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
        },
        examples=[
            OpenApiExample(
                "Loan scoring",
                response_only=True,
                # One handler: drf-spectacular wraps a list's example in the page.
                value={
                    "name": "loan_scoring",
                    "description": "Approves a loan whose score clears the model's threshold.",
                    "reads": {"loan.scored": ["score", "limit"]},
                },
            )
        ],
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(handler_catalogue(), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
