"""The beat schedule, as data synced into django-celery-beat's tables.

Rows, not a code dict, are what beat reads: operators edit them in admin and beat
picks the change up without a restart. ``sync_schedules`` creates missing rows and
leaves an operator's edits to interval or enabled state alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .routing import WorkKind, route_for


@dataclass(frozen=True)
class ScheduleEntry:
    """One periodic task: a unique name, the task, its interval and keyword arguments."""

    name: str
    task: str
    every_seconds: int
    kind: WorkKind
    kwargs: dict[str, object] = field(default_factory=dict)
    asset_class: str | None = None


SCHEDULES: tuple[ScheduleEntry, ...] = (
    ScheduleEntry("quotes: crypto", "quotes.dispatch", 120, WorkKind.QUOTES, {"asset_class": "crypto"}, "crypto"),
    ScheduleEntry("quotes: stock", "quotes.dispatch", 300, WorkKind.QUOTES, {"asset_class": "stock"}, "stock"),
)


@dataclass(frozen=True)
class SyncResult:
    """Names of the rows a sync created and updated."""

    created: tuple[str, ...]
    updated: tuple[str, ...]


@transaction.atomic
def sync_schedules(entries: tuple[ScheduleEntry, ...] = SCHEDULES) -> SyncResult:
    """Create or repair one PeriodicTask per entry; safe to run any number of times."""
    created: list[str] = []
    updated: list[str] = []
    for entry in entries:
        route = route_for(entry.kind, entry.asset_class)
        interval, _ = IntervalSchedule.objects.get_or_create(every=entry.every_seconds, period=IntervalSchedule.SECONDS)
        wanted = {
            "task": entry.task,
            "kwargs": json.dumps(entry.kwargs, sort_keys=True),
            "queue": route.queue,
            "priority": route.priority,
        }
        row = PeriodicTask.objects.filter(name=entry.name).first()
        if row is None:
            # Due at beat's first tick instead of one whole interval after creation.
            last_run_at = timezone.now() - timedelta(seconds=entry.every_seconds)
            PeriodicTask.objects.create(name=entry.name, interval=interval, last_run_at=last_run_at, **wanted)
            created.append(entry.name)
            continue
        changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(row, key, value)
            row.save()
            updated.append(entry.name)
    return SyncResult(created=tuple(created), updated=tuple(updated))
