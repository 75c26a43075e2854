"""Housekeeping and liveness: retention of old rows, and the heartbeat that proves beat and workers run."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from backend.market.freshness import FreshnessReport, measure_freshness
from backend.market.models import PriceBar
from backend.tasks.runs import DispatchRun, Heartbeat

from .accounting import close_overdue_runs
from .deadletters import flush_fallback
from .models import DeadLetter

logger = logging.getLogger(__name__)

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


def cleanup(now: datetime | None = None) -> dict[str, int]:
    """Delete rows past their retention; returns how many of each kind went."""
    now = now or timezone.now()
    days = settings.RETENTION_DAYS
    deleted = {
        "task_results": TaskResult.objects.filter(date_done__lt=now - timedelta(days=days["task_results"])).delete()[0],
        "dispatch_runs": DispatchRun.objects.filter(slot__lt=now - timedelta(days=days["dispatch_runs"])).delete()[0],
    }
    for interval in PriceBar.Interval.values:
        cutoff = now - timedelta(days=days[f"bars_{interval}"])
        deleted[f"bars_{interval}"] = PriceBar.objects.filter(interval=interval, timestamp__lt=cutoff).delete()[0]
    deleted.update(_cleanup_dead_letters(now - timedelta(days=days["dead_letters"])))
    logger.info("cleanup deleted %s", deleted)
    return deleted


def _cleanup_dead_letters(cutoff: datetime) -> dict[str, int]:
    # Open and replayed (not yet confirmed) letters stay until an operator or a replay closes them.
    closed = DeadLetter.objects.filter(
        state__in=[DeadLetter.State.RESOLVED, DeadLetter.State.DISCARDED], last_failure_at__lt=cutoff
    )
    # delete() counts the cascaded history rows too; report the dead letters alone.
    return {"dead_letters": closed.delete()[1].get(DeadLetter._meta.label, 0)}


def freshness(now: datetime | None = None) -> FreshnessReport:
    """Per-asset freshness (provider's as-of time against each asset's calendar-aware target), per class."""
    return measure_freshness(now or timezone.now(), freshness_targets(), DEFAULT_FRESHNESS_SECONDS)


def heartbeat(component: str = "beat", now: datetime | None = None) -> dict[str, object]:
    """Record that ``component`` is alive, close overdue runs, move parked dead letters in, report freshness."""
    now = now or timezone.now()
    closed = close_overdue_runs(now=now)
    flushed = flush_fallback()
    if flushed.flushed:
        logger.info("moved %d parked dead letters into the table", flushed.flushed)
    report = freshness(now)
    detail = report.as_dict()
    Heartbeat.objects.update_or_create(component=component, defaults={"last_seen": now, "detail": detail})
    if report.stale:
        logger.warning(
            "%d assets are stale, the stalest: %s", report.stale, ", ".join(s.symbol for s in report.stalest[:5])
        )
    return {
        "component": component,
        "freshness": detail,
        "dead_letters_flushed": flushed.flushed,
        "runs_closed_incomplete": closed,
    }
