"""URL map: the operator dashboard, the admin and the health endpoints."""

from django.contrib import admin
from django.urls import path

from backend.monitoring.dashboard import views as dashboard
from backend.monitoring.views import health_data, health_live, health_ready, metrics

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/dead-letters/<int:pk>/replay", dashboard.replay_dead_letter, name="dashboard-replay"),
    path("dashboard/dead-letters/<int:pk>/discard", dashboard.discard_dead_letter, name="dashboard-discard"),
    path("admin/", admin.site.urls),
    path("health/live", health_live, name="health-live"),
    path("health/ready", health_ready, name="health-ready"),
    path("health/data", health_data, name="health-data"),
    path("metrics", metrics, name="metrics"),
]
