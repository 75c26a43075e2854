"""URL map: the admin and the health endpoints."""

from django.contrib import admin
from django.urls import path

from backend.monitoring.views import health_data, health_live, health_ready, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live", health_live, name="health-live"),
    path("health/ready", health_ready, name="health-ready"),
    path("health/data", health_data, name="health-data"),
    path("metrics", metrics, name="metrics"),
]
