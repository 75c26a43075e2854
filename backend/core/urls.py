"""URL map: the admin and liveness."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path


def health_live(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the web process is up; readiness checks come with monitoring."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live", health_live, name="health-live"),
]
