"""The project's URLs: front page, admin, API, API docs, health, metrics and the customer's page."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from statustracker.health import HealthCheckApi
from statustracker.home import home_page
from tracking.insights import views as insights_views
from tracking.metrics import metrics_view
from tracking.notify import dev_receiver
from tracking.progress import email_updates
from tracking.progress import preview as progress_preview
from tracking.progress import views as tracking_views

admin.site.site_header = "statustracker"
admin.site.site_title = "statustracker admin"
admin.site.index_title = "Status models, instances and events"

urlpatterns = [
    path("", home_page, name="home"),
    # Staff pages under admin/ that are not one model's admin: before the admin's own URLs.
    path(
        "admin/dashboard/<str:model_id>/",
        admin.site.admin_view(insights_views.model_dashboard_page),
        name="model-dashboard",
    ),
    path(
        "admin/dashboard/<str:model_id>/event-log",
        admin.site.admin_view(insights_views.model_event_log_download),
        name="model-event-log",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracking.urls")),
    path("api/v1/", include("models_registry.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", HealthCheckApi.as_view(), name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("track/<str:token>/", tracking_views.instance_page, name="tracking-page"),
    path("track/<str:token>/live", tracking_views.instance_page_live, name="tracking-page-live"),
    # Email updates (docs/customer-email.md): the form, and the links every mail carries.
    path("track/<str:token>/email", email_updates.email_updates_page, name="tracking-email"),
    path("track/email/confirm/<str:token>/", email_updates.email_confirm, name="tracking-email-confirm"),
    path(
        "track/email/unsubscribe/<str:token>/", email_updates.email_unsubscribe_page, name="tracking-email-unsubscribe"
    ),
    # Staff only: the customer page of any state of a model's draft or version, for a made-up request.
    path("admin-preview/<str:model_id>/", progress_preview.model_preview, name="progress-preview"),
    # Local runs only (STATUSTRACKER_DEV_RECEIVER and DEBUG; 404 otherwise): make run's webhook receiver.
    path("dev/webhooks/", dev_receiver.received_page, name="dev-webhooks"),
    path("dev/webhooks/receive", dev_receiver.webhook_receive, name="dev-webhooks-receive"),
]
