"""Health endpoints for load balancers and orchestrators (JSON, no authentication, no secrets)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .health import readiness


@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """200 while the web process can answer at all."""
    return JsonResponse({"status": "ok"})


@never_cache
def health_ready(request: HttpRequest) -> JsonResponse:
    """200 when database, broker, workers per queue, beat and data freshness are all fine, else 503."""
    ready, checks = readiness()
    body = {"status": "ready" if ready else "not ready", "checks": [c.as_dict() for c in checks]}
    return JsonResponse(body, status=200 if ready else 503)
