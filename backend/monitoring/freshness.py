"""Per-asset data freshness as the monitoring side reads it: /metrics, /health/data, the dashboard, alerts.

The measurement itself lives in ``backend.market.freshness`` (the heartbeat task uses it too); this
module adds the targets the schedules imply, so callers need only ``current_freshness()``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from backend.market.freshness import ClassFreshness, FreshnessReport, StaleAsset
from backend.tasks.maintenance import freshness


def current_freshness(now: datetime | None = None) -> FreshnessReport:
    """Freshness of every active, unquarantined asset now: per class counts, age quantiles, the stalest."""
    return freshness(now or timezone.now())


__all__ = ["ClassFreshness", "FreshnessReport", "StaleAsset", "current_freshness"]
