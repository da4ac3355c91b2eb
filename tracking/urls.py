"""The tracking app's API routes: events in, instances out, trying an event on a model, dead letters,
webhook subscriptions."""

from django.urls import path

from tracking.arrival.apis import EventIngestApi
from tracking.insights.apis import ModelEventLogApi
from tracking.notify.apis import WebhookCollectionApi, WebhookDetailApi, WebhookRotateSecretApi, WebhookTestApi
from tracking.operations.apis import DeadLetterDetailApi, DeadLetterDiscardApi, DeadLetterListApi, DeadLetterReplayApi
from tracking.progress.apis import InstanceDetailApi, InstanceEventListApi, InstanceListApi
from tracking.progress.trial_apis import ModelTryApi

urlpatterns = [
    path("events", EventIngestApi.as_view(), name="events-ingest"),
    path("instances", InstanceListApi.as_view(), name="instances-list"),
    # Transaction ids are free text and may hold slashes, sent as they are or percent-encoded (%2F). What
    # follows the model is the transaction id, except that a last segment "events" asks for its events:
    # .../ORD/7/events lists the events of "ORD/7". An id that itself ends in "/events" is sent with
    # that slash encoded (.../ORD%2Fevents), which InstanceEventListApi tells apart (docs/api.md).
    path(
        "instances/<str:model_id>/<path:transaction_id>/events",
        InstanceEventListApi.as_view(),
        name="instances-events",
    ),
    path("instances/<str:model_id>/<path:transaction_id>", InstanceDetailApi.as_view(), name="instances-detail"),
    # Next to models_registry's models/<str:model_id> (a model id holds no slash). Here, not there:
    # trying runs the workers' engine, and models_registry knows nothing of tracking.
    path("models/<str:model_id>/try", ModelTryApi.as_view(), name="models-try"),
    path("models/<str:model_id>/event-log", ModelEventLogApi.as_view(), name="models-event-log"),
    path("dead-letters", DeadLetterListApi.as_view(), name="dead-letters-list"),
    path("dead-letters/<int:dead_letter_id>", DeadLetterDetailApi.as_view(), name="dead-letters-detail"),
    path("dead-letters/<int:dead_letter_id>/replay", DeadLetterReplayApi.as_view(), name="dead-letters-replay"),
    path("dead-letters/<int:dead_letter_id>/discard", DeadLetterDiscardApi.as_view(), name="dead-letters-discard"),
    path("webhooks", WebhookCollectionApi.as_view(), name="webhooks"),
    path("webhooks/<int:subscription_id>", WebhookDetailApi.as_view(), name="webhooks-detail"),
    path("webhooks/<int:subscription_id>/rotate-secret", WebhookRotateSecretApi.as_view(), name="webhooks-rotate"),
    path("webhooks/<int:subscription_id>/test", WebhookTestApi.as_view(), name="webhooks-test"),
]
