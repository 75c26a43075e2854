"""Health endpoints for load balancers and orchestrators (JSON, no authentication, no secrets)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .health import readiness
from .metrics import PlatformCollector


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


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the platform's gauges (no secrets, no per-user data)."""
    registry = CollectorRegistry()
    registry.register(PlatformCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
