"""The tracking app's API routes: events in, instances out, and trying an event on a model."""

from django.urls import path

from tracking.arrival.apis import EventIngestApi
from tracking.insights.apis import ModelEventLogApi
from tracking.progress.apis import InstanceDetailApi, InstanceListApi
from tracking.progress.trial_apis import ModelTryApi

urlpatterns = [
    path("events", EventIngestApi.as_view(), name="events-ingest"),
    path("instances", InstanceListApi.as_view(), name="instances-list"),
    # Transaction ids are free text and may hold slashes.
    path("instances/<str:model_id>/<path:transaction_id>", InstanceDetailApi.as_view(), name="instances-detail"),
    # Next to models_registry's models/<str:model_id> (a model id holds no slash). Here, not there:
    # trying runs the workers' engine, and models_registry knows nothing of tracking.
    path("models/<str:model_id>/try", ModelTryApi.as_view(), name="models-try"),
    path("models/<str:model_id>/event-log", ModelEventLogApi.as_view(), name="models-event-log"),
]
