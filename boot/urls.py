"""URL map: the API under /api/v1/, probes, /status, /metrics, admin."""

from django.contrib import admin
from django.urls import include, path

from portal.health import views as health
from portal.metrics import views as metrics
from portal.views import status

urlpatterns = [
    path("api/v1/", include("portal.urls")),
    path("health", health.health, name="health"),
    path("ready", health.ReadyView.as_view(), name="ready"),
    path("status", status.StatusPage.as_view(), name="status"),
    path("status/outbox/requeue", status.requeue, name="status-requeue"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
