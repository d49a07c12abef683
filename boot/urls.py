"""URL map: the upload API under /api/v1/, probes at /health and /ready, /status, /metrics,
admin."""

from django.contrib import admin
from django.urls import include, path

from portal.health import views as health
from portal.metrics import views as metrics

urlpatterns = [
    path("api/v1/", include("portal.urls")),
    path("health", health.health, name="health"),
    path("ready", health.ReadyView.as_view(), name="ready"),
    path("status", health.StatusView.as_view(), name="status"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
