"""Put Flower's /metrics behind the scrape token (see ``flower_config``)."""

from __future__ import annotations

from typing import Any

from .token import bearer_token_ok


def require_scrape_token_on_flower_metrics() -> None:
    """Make Flower's metrics handler answer 401 unless the request carries the scrape token."""
    from django.conf import settings
    from flower.views.monitor import Metrics

    token = settings.METRICS_TOKEN

    def prepare(handler: Any) -> None:
        if not bearer_token_ok(handler.request.headers.get("Authorization", ""), token):
            # Answered here, not by raising HTTPError(401): Flower's error page would replace the
            # challenge with `Basic realm="flower"`, a scheme this page never accepts. Finishing in
            # prepare() means the handler itself does not run.
            handler.set_status(401)
            handler.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            handler.set_header("Content-Type", "text/plain; charset=utf-8")
            handler.finish("metrics need the scrape token (Authorization: Bearer ...)\n")

    Metrics.prepare = prepare
