"""The models_registry app's API routes: list, read and import status models."""

from django.urls import path

from models_registry.apis import ModelCollectionApi, ModelDetailApi

urlpatterns = [
    # GET lists models (ModelListApi), POST imports one (ModelImportApi).
    path("models", ModelCollectionApi.as_view(), name="models"),
    path("models/<str:model_id>", ModelDetailApi.as_view(), name="models-detail"),
]
