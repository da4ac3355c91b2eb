"""The models_registry app's API routes: list, read and import status models; list handlers."""

from django.urls import path

from models_registry.apis import ModelCollectionApi, ModelDetailApi
from models_registry.handler_apis import HandlerListApi

urlpatterns = [
    # GET lists models (ModelListApi), POST imports one (ModelImportApi).
    path("models", ModelCollectionApi.as_view(), name="models"),
    path("models/<str:model_id>", ModelDetailApi.as_view(), name="models-detail"),
    path("handlers", HandlerListApi.as_view(), name="handlers"),
]
