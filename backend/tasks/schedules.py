"""The beat schedule, as data synced into django-celery-beat's tables.

Rows, not a code dict, are what beat reads: operators edit them in admin and beat picks the
change up without a restart. ``sync_schedules`` creates missing rows, repairs what a row runs
(task, arguments, queue, priority) and leaves an operator's timing and enabled flag alone. It
also rewrites the seed system's entries (the AAPL-only indicator schedule, the Dramatiq and old
Celery task names) into the new fan-out entries.

Descriptions: a row gets its entry's description when its own is blank; a description an
operator wrote in admin is theirs and is never overwritten (clear it to get ours back).

Celery's own ``celery.backend_cleanup`` row is removed: ``maintenance.cleanup`` is the one
cleanup, and ``CELERY_RESULT_EXPIRES = None`` keeps beat from creating that row again.
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
    description: str = ""


def _quotes(asset_class: str, every_seconds: int, assets: str) -> ScheduleEntry:
    """The quote fan-out of one asset class (``assets`` names its assets in the description)."""
    return ScheduleEntry(
        f"quotes: {asset_class}",
        "quotes.dispatch",
        WorkKind.QUOTES,
        every_seconds,
        kwargs={"asset_class": asset_class},
        asset_class=asset_class,
        description=f"Latest quote and today's running daily bar of every active {assets}, "
        "sent as provider-sized fetch batches.",
    )


SCHEDULES: tuple[ScheduleEntry, ...] = (
    _quotes("crypto", 120, "crypto asset"),
    _quotes("stock", 300, "stock"),
    ScheduleEntry(
        "news", "news.fetch", WorkKind.NEWS, every_seconds=1800,
        description="Recent articles about the active assets (a rotating window of symbols per run), "
        "stored once per URL and linked to the assets they name.",
    ),
    ScheduleEntry(
        "indicators: hourly", "indicators.dispatch", WorkKind.INDICATORS, crontab=("0", "*"),
        description="SMA, EMA, RSI, MACD and Bollinger Bands of every active asset from its bars, "
        "sent as chunks of compute tasks.",
    ),
    ScheduleEntry(
        "maintenance: cleanup", "maintenance.cleanup", WorkKind.MAINTENANCE, crontab=("30", "3"),
        description="The one cleanup: deletes task results, bars, dispatch runs and closed dead letters "
        "older than their RETENTION_*_DAYS setting.",
    ),
    ScheduleEntry(
        "maintenance: heartbeat", "maintenance.heartbeat", WorkKind.HEARTBEAT, every_seconds=60,
        description="Proves beat and a worker are alive (/health/ready, beat's healthcheck) and "
        "measures every active asset's freshness (by the provider's as-of time), naming the stalest.",
    ),
)  # fmt: skip

# Celery's built-in result cleanup, which beat adds on its own while result_expires is set.
CELERY_BACKEND_CLEANUP = "celery.backend_cleanup"

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
    """Names of the rows a sync created, repaired, rewrote from legacy entries, and removed."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    migrated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


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
            rewritten = {**_wanted(entry), **_timing(entry), "name": target, "last_run_at": None}
            for key, value in {**rewritten, "description": entry.description}.items():
                setattr(row, key, value)
            row.save()
        migrated.append(old)
    return migrated


def _remove_backend_cleanup() -> list[str]:
    """Delete Celery's own result-cleanup rows: maintenance.cleanup does that job, on its own setting."""
    rows = PeriodicTask.objects.filter(task=CELERY_BACKEND_CLEANUP)
    names = sorted(rows.values_list("name", flat=True))
    rows.delete()
    return names


@transaction.atomic
def sync_schedules(entries: tuple[ScheduleEntry, ...] = SCHEDULES) -> SyncResult:
    """Create or repair one PeriodicTask per entry and rewrite legacy rows; safe to run any number of times."""
    by_name = {entry.name: entry for entry in entries}
    migrated = _migrate_legacy(by_name)
    removed = _remove_backend_cleanup()
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
            PeriodicTask.objects.create(name=entry.name, description=entry.description, **timing, **wanted)
            created.append(entry.name)
            continue
        if not row.description.strip() and entry.description:
            wanted["description"] = entry.description  # blank: ours; written by an operator: theirs
        changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(row, key, value)
            row.save()
            updated.append(entry.name)
    return SyncResult(created=tuple(created), updated=tuple(updated), migrated=tuple(migrated), removed=tuple(removed))
