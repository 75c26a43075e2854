"""Flower configuration file (``celery -A backend.stack flower --conf=backend/monitoring/flower_config.py``).

Flower serves ``/metrics`` without its own authentication by design (its issue #1342): basic auth
guards the UI, not the metrics. Loading this file makes that one handler demand the same scrape token
as the project's /metrics (``Authorization: Bearer $METRICS_TOKEN``); every other page keeps Flower's
own auth. Tornado executes this file when Flower starts, after the Celery app (and Django settings)
loaded; the names it defines are not Flower options and are ignored as such.
"""

from backend.monitoring.flower_auth import require_scrape_token_on_flower_metrics

require_scrape_token_on_flower_metrics()
