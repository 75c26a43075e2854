"""Health endpoints (JSON, no authentication, no secrets) and the token-protected /metrics."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .health import check_freshness, readiness
from .metrics import build_registry
from .token import bearer_token_ok


@never_cache
def health_live(request: HttpRequest) -> JsonResponse:
    """200 while the web process can answer at all."""
    return JsonResponse({"status": "ok"})


@never_cache
def health_ready(request: HttpRequest) -> JsonResponse:
    """200 when database, broker, a worker per queue and beat are fine, else 503 (data freshness: /health/data)."""
    ready, checks = readiness()
    body = {"status": "ready" if ready else "not ready", "checks": [c.as_dict() for c in checks]}
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
def health_data(request: HttpRequest) -> JsonResponse:
    """200 when every active asset meets its freshness target, else 503; names the stalest assets either way."""
    check = check_freshness()
    body = {"status": "fresh" if check.ok else "stale", **check.detail}
    return JsonResponse(body, status=200 if check.ok else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the platform (no secrets, no per-user data), for the scrape token only."""
    if not bearer_token_ok(request.headers.get("Authorization", ""), settings.METRICS_TOKEN):
        response = HttpResponse("metrics need the scrape token (Authorization: Bearer ...)\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(build_registry()), content_type=CONTENT_TYPE_LATEST)
