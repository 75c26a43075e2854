"""Health endpoints (JSON, no secrets) and the token-protected /metrics.

/health/live and /health/ready answer anyone. /health/data answers anyone with its status and counts;
the names of the stale assets need the scrape token or a staff session.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .health import cached_freshness, readiness
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


# What an anonymous caller learns of each class: whether it is fresh, how many assets, how many stale
# or never quoted (never a name, an age or a target).
PUBLIC_CLASS_FIELDS = ("fresh", "assets", "stale", "without_quote")


def may_see_names(request: HttpRequest) -> bool:
    """The scrape token (a freshness monitor) or a logged-in staff member (an operator's browser)."""
    if bearer_token_ok(request.headers.get("Authorization", ""), settings.METRICS_TOKEN):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def counts_only(detail: dict) -> dict:
    """The freshness report without names: its time, the stale count and per-class counts."""
    classes = detail.get("classes", {})
    return {
        "at": detail.get("at"),
        "stale": detail.get("stale"),
        "classes": {code: {k: row.get(k) for k in PUBLIC_CLASS_FIELDS} for code, row in classes.items()},
    }


@never_cache
def health_data(request: HttpRequest) -> JsonResponse:
    """200 when every active asset meets its freshness target, else 503. Anyone gets the status and counts;
    the stalest assets by name, ages and targets need the scrape token or a staff session. The report is
    computed at most once per HEALTH_DATA_CACHE_SECONDS (a poll storm costs one computation)."""
    check = cached_freshness()
    detail = check.detail if may_see_names(request) else counts_only(check.detail)
    body = {"status": "fresh" if check.ok else "stale", **detail}
    return JsonResponse(body, status=200 if check.ok else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the platform (no secrets, no per-user data), for the scrape token only."""
    if not bearer_token_ok(request.headers.get("Authorization", ""), settings.METRICS_TOKEN):
        response = HttpResponse("metrics need the scrape token (Authorization: Bearer ...)\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(build_registry()), content_type=CONTENT_TYPE_LATEST)
