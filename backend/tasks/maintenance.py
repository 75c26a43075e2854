"""Housekeeping and liveness: retention of old rows, and the heartbeat that proves beat and workers run.

The layers above the task platform keep rows of their own (dead letters) and have chores of their own
for the heartbeat (the dead-letter fallback moved into the table): their apps add them with
``add_retention`` and ``add_heartbeat_chore`` when Django starts, so cleanup stays the one cleanup and
this module names nothing above it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from backend.market.models import PriceBar
from backend.tasks.models import DispatchRun, Heartbeat

from .accounting import close_overdue_runs
from .freshness_targets import current_freshness

logger = logging.getLogger(__name__)

# name -> delete(now) -> rows deleted: retention of the layers above (their RETENTION_DAYS entry).
_retention: dict[str, Callable[[datetime], int]] = {}
# result key -> chore() -> how many things it did: the heartbeat's work for the layers above.
_heartbeat_chores: dict[str, Callable[[], int]] = {}


def add_retention(name: str, delete: Callable[[datetime], int]) -> None:
    """Have ``cleanup`` call ``delete(now)`` too and report its count under ``name``."""
    _retention[name] = delete


def add_heartbeat_chore(name: str, chore: Callable[[], int]) -> None:
    """Have ``heartbeat`` call ``chore()`` (after closing overdue runs) and report its count under ``name``."""
    _heartbeat_chores[name] = chore


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
    for name, delete in _retention.items():
        deleted[name] = delete(now)
    logger.info("cleanup deleted %s", deleted)
    return deleted


def heartbeat(component: str = "beat", now: datetime | None = None) -> dict[str, object]:
    """Record that ``component`` is alive, close overdue runs, do the added chores (parked dead letters
    moved in), report freshness."""
    now = now or timezone.now()
    closed = close_overdue_runs(now=now)
    chores = {name: chore() for name, chore in _heartbeat_chores.items()}
    report = current_freshness(now)
    detail = report.as_dict()
    Heartbeat.objects.update_or_create(component=component, defaults={"last_seen": now, "detail": detail})
    if report.stale:
        logger.warning(
            "%d assets are stale, the stalest: %s", report.stale, ", ".join(s.symbol for s in report.stalest[:5])
        )
    return {
        "component": component,
        "freshness": detail,
        **chores,
        "runs_closed_incomplete": closed,
    }
