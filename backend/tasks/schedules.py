"""The beat schedule, as data synced into django-celery-beat's tables.

Rows, not a code dict, are what beat reads: operators edit them in admin and beat picks the
change up without a restart. ``sync_schedules`` creates missing rows, repairs what a row runs
(task, arguments, queue, priority) and leaves an operator's timing and enabled flag alone. It
also rewrites the seed system's entries (the AAPL-only indicator schedule, the Dramatiq and old
Celery task names) into the new fan-out entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from .routing import WorkKind, route_for


@dataclass(frozen=True)
class ScheduleEntry:
    """One periodic task: a unique name, the task, when it runs and its keyword arguments.

    ``every_seconds`` gives an interval schedule; ``crontab`` (minute, hour, in UTC) a wall-clock one.
    """

    name: str
    task: str
    kind: WorkKind
    every_seconds: int | None = None
    crontab: tuple[str, str] | None = None
    kwargs: dict[str, object] = field(default_factory=dict)
    asset_class: str | None = None


SCHEDULES: tuple[ScheduleEntry, ...] = (
    ScheduleEntry("quotes: crypto", "quotes.dispatch", WorkKind.QUOTES, 120, None, {"asset_class": "crypto"}, "crypto"),
    ScheduleEntry("quotes: stock", "quotes.dispatch", WorkKind.QUOTES, 300, None, {"asset_class": "stock"}, "stock"),
    ScheduleEntry("news", "news.fetch", WorkKind.NEWS, every_seconds=1800),
    ScheduleEntry("indicators: hourly", "indicators.dispatch", WorkKind.INDICATORS, crontab=("0", "*")),
    ScheduleEntry("maintenance: cleanup", "maintenance.cleanup", WorkKind.MAINTENANCE, crontab=("30", "3")),
    ScheduleEntry("maintenance: heartbeat", "maintenance.heartbeat", WorkKind.HEARTBEAT, every_seconds=60),
)

# The seed's task names (Celery and Dramatiq, by their last dotted part) -> the entry replacing them.
LEGACY_TASKS: dict[str, str] = {
    "calculate_indicators_task": "indicators: hourly",
    "fetch_crypto_prices_task": "quotes: crypto",
    "fetch_yahoo_stocks_task": "quotes: stock",
    "fetch_stock_prices_task": "quotes: stock",
    "fetch_stock_task": "quotes: stock",
    "fetch_news_task": "news",
    "cleanup_old_cache_task": "maintenance: cleanup",
    "health_check_task": "maintenance: heartbeat",
}


@dataclass(frozen=True)
class SyncResult:
    """Names of the rows a sync created, repaired, and legacy rows it rewrote or removed."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    migrated: tuple[str, ...] = ()


def _timing(entry: ScheduleEntry) -> dict[str, object]:
    if entry.crontab is not None:
        minute, hour = entry.crontab
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        return {"crontab": crontab, "interval": None}
    interval, _ = IntervalSchedule.objects.get_or_create(every=entry.every_seconds, period=IntervalSchedule.SECONDS)
    return {"interval": interval, "crontab": None}


def _wanted(entry: ScheduleEntry) -> dict[str, object]:
    route = route_for(entry.kind, entry.asset_class)
    return {
        "task": entry.task,
        "args": "[]",
        "kwargs": json.dumps(entry.kwargs, sort_keys=True),
        "queue": route.queue,
        "priority": route.priority,
    }


def _migrate_legacy(entries: dict[str, ScheduleEntry]) -> list[str]:
    """Rewrite rows that run a seed task into the entry replacing it (or drop them if it exists)."""
    migrated: list[str] = []
    for row in PeriodicTask.objects.exclude(name__in=entries):
        target = LEGACY_TASKS.get(row.task.rsplit(".", 1)[-1])
        if target is None or target not in entries:
            continue
        old = f"{row.name} ({row.task} {row.kwargs})"
        if PeriodicTask.objects.filter(name=target).exists():
            row.delete()
        else:
            entry = entries[target]
            for key, value in {**_wanted(entry), **_timing(entry), "name": target, "last_run_at": None}.items():
                setattr(row, key, value)
            row.save()
        migrated.append(old)
    return migrated


@transaction.atomic
def sync_schedules(entries: tuple[ScheduleEntry, ...] = SCHEDULES) -> SyncResult:
    """Create or repair one PeriodicTask per entry and rewrite legacy rows; safe to run any number of times."""
    by_name = {entry.name: entry for entry in entries}
    migrated = _migrate_legacy(by_name)
    created: list[str] = []
    updated: list[str] = []
    for entry in entries:
        wanted = _wanted(entry)
        row = PeriodicTask.objects.filter(name=entry.name).first()
        if row is None:
            timing = _timing(entry)
            if entry.every_seconds is not None:
                # Due at beat's first tick instead of one whole interval after creation.
                timing["last_run_at"] = timezone.now() - timedelta(seconds=entry.every_seconds)
            PeriodicTask.objects.create(name=entry.name, **timing, **wanted)
            created.append(entry.name)
            continue
        changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(row, key, value)
            row.save()
            updated.append(entry.name)
    return SyncResult(created=tuple(created), updated=tuple(updated), migrated=tuple(migrated))
