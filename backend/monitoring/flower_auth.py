"""Put Flower's /metrics behind the scrape token (see ``flower_config``)."""

from __future__ import annotations

from typing import Any

from .token import bearer_token_ok


def require_scrape_token_on_flower_metrics() -> None:
    """Make Flower's metrics handler answer 401 unless the request carries the scrape token."""
    from django.conf import settings
    from flower.views.monitor import Metrics
    from tornado.web import HTTPError

    token = settings.METRICS_TOKEN

    def prepare(handler: Any) -> None:
        if not bearer_token_ok(handler.request.headers.get("Authorization", ""), token):
            handler.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            raise HTTPError(401)

    Metrics.prepare = prepare
