"""REST API for status model definitions: list them, read a version, import a new one.

Reading needs the reader scope; importing needs a user who is staff or holds
``models_registry.edit_definitions``. An import is validated by the same validator as the
admin and ``import_models``, and answers a 400 with the same per-field messages.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from api_access.pagination import ApiPagination
from api_access.permissions import CanEditDefinitions, CanRead
from api_access.query import validated_query
from models_registry.definition import DefinitionError
from models_registry.models import ModelVersion
from models_registry.selectors import model_list, model_version, model_version_numbers
from models_registry.services import model_import


class _VersionSerializer(serializers.Serializer):
    id = serializers.CharField(source="model.key", help_text="The model id.")
    version = serializers.IntegerField(source="number")
    versions = serializers.SerializerMethodField(help_text="All published version numbers, oldest first.")
    published_at = serializers.DateTimeField()
    published_by = serializers.CharField(source="published_by.username", allow_null=True, default=None)
    document = serializers.JSONField(help_text="The canonical status model document of this version.")

    class Meta:
        ref_name = "ModelVersion"

    def get_versions(self, version: ModelVersion) -> list[int]:
        return model_version_numbers(key=version.model.key)


# The request body of an import, as far as JSON Schema can say it: the fields every model must have,
# and their form. Whether a document holds together (known state keys, reachable states, compiling
# expressions, a registered handler) is the validator's to say, in the 400's ``errors``.
MODEL_DOCUMENT_SCHEMA = {
    "title": "StatusModelDocument",
    "type": "object",
    "description": "A status model document (docs/spec/status-models.md); the other fields it describes "
    "(`description`, `handler`, `start_events`, `park_ttl`, `transitions`, `milestones`, `display`) are optional.",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "initial_state": {"type": "string", "minLength": 1, "description": "The key of a non-terminal state."},
        "states": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                "required": ["key", "label"],
            },
        },
    },
    "required": ["id", "name", "initial_state", "states"],
    # Fields the format does not know are left out of the stored document, not refused.
    "additionalProperties": True,
}


class ModelListApi(APIView):
    """Readers list the models that have a published version."""

    permission_classes = [CanRead]
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(source="key")
        name = serializers.CharField(source="latest_document.name")
        description = serializers.CharField(source="latest_document.description", allow_blank=True)
        handler = serializers.CharField(source="latest_document.handler")
        latest_version = serializers.IntegerField()
        updated_at = serializers.DateTimeField()

        class Meta:
            ref_name = "ModelSummary"

    @extend_schema(
        operation_id="models_list",
        tags=["models"],
        summary="List models",
        description="Models with at least one published version. Needs the reader scope.",
        responses={
            200: OutputSerializer(many=True),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
        },
    )
    def get(self, request):
        # Named through the class, not self: ModelCollectionApi serves this method next to
        # ModelImportApi.post, and each must find its own serializers.
        paginator = ModelListApi.pagination_class()
        page = paginator.paginate_queryset(model_list().order_by("key"), request, view=self)
        return paginator.get_paginated_response(ModelListApi.OutputSerializer(page, many=True).data)


class ModelImportApi(APIView):
    """Definition editors import a model document; it is published as the model's next version."""

    permission_classes = [CanEditDefinitions]

    class OutputSerializer(_VersionSerializer):
        created = serializers.SerializerMethodField(help_text="False when the document equals the latest version.")

        class Meta:
            ref_name = "ModelImportResult"

        def get_created(self, version: ModelVersion) -> bool:
            return self.context["created"]

    class ErrorSerializer(serializers.Serializer):
        detail = serializers.CharField()
        errors = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Field path (e.g. `states[2].key`, '' for the whole document) -> messages.",
        )

        class Meta:
            ref_name = "ModelImportError"

    @extend_schema(
        operation_id="models_import",
        tags=["models"],
        summary="Import a model",
        description=(
            "A status model document (docs/spec/status-models.md) in JSON. Valid: published as the model's next "
            "version (201), or left alone when it equals the latest version (200). Invalid: 400 with every error "
            "by field path, also for what the schema cannot say (a transition to an undeclared state, a state "
            "that cannot be reached). Needs a staff user or the `models_registry.edit_definitions` permission."
        ),
        request={"application/json": MODEL_DOCUMENT_SCHEMA},
        responses={
            200: OutputSerializer,
            201: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The document is not a valid status model."),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The user may not edit definitions."),
        },
        examples=[
            OpenApiExample(
                "A small model",
                request_only=True,
                value={
                    "id": "claim",
                    "name": "Insurance claim",
                    "initial_state": "filed",
                    "states": [
                        {"key": "filed", "label": "Claim filed"},
                        {"key": "paid", "label": "Paid", "kind": "success"},
                    ],
                    "transitions": [{"event": "claim.paid", "from": ["filed"], "to": "paid"}],
                },
            )
        ],
    )
    def post(self, request):
        try:
            version, created = model_import(document=request.data, user=request.user)
        except DefinitionError as exc:
            return Response(
                ModelImportApi.ErrorSerializer({"detail": "The status model is invalid.", "errors": exc.errors}).data,
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(
            ModelImportApi.OutputSerializer(version, context={"created": created}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ModelDetailApi(APIView):
    """Readers fetch a model's current version, or any earlier one with ``?version=N``."""

    permission_classes = [CanRead]

    class FilterSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the latest.")

        class Meta:
            ref_name = "ModelVersionFilter"

    class OutputSerializer(_VersionSerializer):
        class Meta:
            ref_name = "ModelVersionDetail"

    @extend_schema(
        operation_id="models_retrieve",
        tags=["models"],
        summary="One model version",
        description="The canonical document of the model's latest version, or of `?version=N`. Needs the reader scope.",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="`version` is not a positive integer."),
            401: OpenApiResponse(description="No or invalid token."),
            403: OpenApiResponse(description="The token lacks the reader scope."),
            404: OpenApiResponse(description="No such model, or no such version of it."),
        },
    )
    def get(self, request, model_id: str):
        number = validated_query(self.FilterSerializer, request).get("version")
        version = model_version(key=model_id, number=number)
        if version is None:
            which = f"version {number} of model {model_id!r}" if number else f"published model {model_id!r}"
            raise NotFound(f"No {which}.")
        return Response(self.OutputSerializer(version).data)


class _OperationsByMethod(APIView):
    """Serves several one-operation views at one URL; each method keeps its own view's permissions.

    The operation views name their serializers through their own class (``ModelListApi.X``), as
    attributes of the same name would otherwise resolve to the first base's.
    """

    def _operation_view(self) -> type[APIView]:
        method = self.request.method.lower()
        return next((cls for cls in type(self).__mro__ if method in vars(cls)), type(self))

    def get_permissions(self):
        return [permission() for permission in self._operation_view().permission_classes]


class ModelCollectionApi(_OperationsByMethod, ModelListApi, ModelImportApi):
    """``/api/v1/models``: GET is ``ModelListApi``, POST is ``ModelImportApi``."""
