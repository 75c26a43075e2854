"""The freshness targets the quote schedules set, and the freshness of every asset against them now.

An asset class may age twice its quote schedule's interval, as operators set it in admin; the
measurement itself (per asset, on its market's calendar) is ``backend.market.freshness``. The
heartbeat, the quote dispatcher's staleness, health, metrics, the dashboard and the alerts all read
freshness through here, so they agree.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from backend.market.freshness import FreshnessReport, measure_freshness

# An asset is stale when its quote (provider as-of time) is older than this many of its schedule's intervals.
STALE_AFTER_INTERVALS = 2
# Target for a class with no interval quote schedule (paused, crontab, or none yet).
DEFAULT_FRESHNESS_SECONDS = 3600


def freshness_targets() -> dict[str, float]:
    """Seconds each asset class may age: twice its quote schedule's interval, as operators set it in admin."""
    targets: dict[str, float] = {}
    rows = PeriodicTask.objects.filter(task="quotes.dispatch", enabled=True, interval__isnull=False)
    for row in rows.select_related("interval"):
        asset_class = json.loads(row.kwargs or "{}").get("asset_class")
        if asset_class:
            seconds = STALE_AFTER_INTERVALS * row.schedule.run_every.total_seconds()
            targets[asset_class] = min(seconds, targets.get(asset_class, seconds))
    return targets


def current_freshness(now: datetime | None = None) -> FreshnessReport:
    """Per-asset freshness (provider's as-of time against each asset's calendar-aware target), per class."""
    return measure_freshness(now or timezone.now(), freshness_targets(), DEFAULT_FRESHNESS_SECONDS)
