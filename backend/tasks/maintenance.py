"""Housekeeping and liveness: retention of old rows, and the heartbeat that proves beat and workers run."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from backend.market.conditions import clock_for, measure_staleness
from backend.market.models import Asset, PriceBar, Quote
from backend.tasks.runs import DispatchRun, Heartbeat

from .accounting import close_overdue_runs
from .deadletters import flush_fallback
from .models import DeadLetter

logger = logging.getLogger(__name__)

# A class is stale when its newest quote is older than this many of its schedule's intervals.
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


def freshness(now: datetime | None = None) -> dict[str, dict[str, object]]:
    """Age of the newest quote per asset class (provider's as-of time) and whether it meets its target.

    Targets follow the market calendar: outside its session a stock class whose quotes carry the
    last close is fresh. A class listed on several exchanges is fresh only when each of them is.
    """
    now = now or timezone.now()
    newest: dict[tuple[str, str], datetime | None] = {
        (code, exchange): stamp
        for code, exchange, stamp in Quote.objects.filter(asset__is_active=True)
        .values("asset__asset_type__code", "asset__exchange")
        .annotate(newest=Max("as_of"))
        .values_list("asset__asset_type__code", "asset__exchange", "newest")
    }
    targets = freshness_targets()
    report: dict[str, dict[str, object]] = {}
    pairs = Asset.objects.active().values_list("asset_type__code", "exchange").distinct()
    for code, exchange in sorted(pairs):
        target = targets.get(code, DEFAULT_FRESHNESS_SECONDS)
        measured = measure_staleness(newest.get((code, exchange)), clock_for(code, exchange, now), target)
        row = report.get(code)
        # The class reports its worst exchange: a stale one first, else the oldest quote.
        worse = row is None or (
            row["fresh"] and (measured.stale or (measured.age_seconds or 0) > (row["age_seconds"] or 0))
        )
        if worse:
            report[code] = {
                "age_seconds": measured.age_seconds,
                "target_seconds": measured.target_seconds,
                "fresh": not measured.stale,
            }
    return report


def heartbeat(component: str = "beat", now: datetime | None = None) -> dict[str, object]:
    """Record that ``component`` is alive, close overdue runs, move parked dead letters in, report freshness."""
    now = now or timezone.now()
    closed = close_overdue_runs(now=now)
    flushed = flush_fallback()
    if flushed.flushed:
        logger.info("moved %d parked dead letters into the table", flushed.flushed)
    report = freshness(now)
    Heartbeat.objects.update_or_create(component=component, defaults={"last_seen": now, "detail": report})
    stale = sorted(code for code, row in report.items() if not row["fresh"])
    if stale:
        logger.warning("data is stale for asset classes %s", stale)
    return {
        "component": component,
        "freshness": report,
        "dead_letters_flushed": flushed.flushed,
        "runs_closed_incomplete": closed,
    }
