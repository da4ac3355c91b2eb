"""The tracking app's API routes: events in, instances out."""

from django.urls import path

from tracking.arrival.apis import EventIngestApi
from tracking.progress.apis import InstanceDetailApi, InstanceListApi

urlpatterns = [
    path("events", EventIngestApi.as_view(), name="events-ingest"),
    path("instances", InstanceListApi.as_view(), name="instances-list"),
    # Transaction ids are free text and may hold slashes.
    path("instances/<str:model_id>/<path:transaction_id>", InstanceDetailApi.as_view(), name="instances-detail"),
]
