"""Guarded periodic runs: one run per (schedule, slot), never overlapping an open run, every run accounted.

Two beat processes, or one beat around a schedule change, can send the same tick twice; a slow run
can still be fanning out when the next tick arrives. Every periodic task (dispatchers, news, the
heartbeat, cleanup) therefore:
1. takes a short lock per schedule (TTL'd, owner-checked) so two claimers never decide at once;
2. closes the schedule's runs past their deadline as ``incomplete``;
3. skips, logs and records the tick when the schedule's previous run is still open;
4. claims (schedule, slot) with a unique row, the slot taken from the time beat sent the tick, so a
   doubled tick finds the slot taken and does nothing (and says so in a ``skipped`` row);
5. records the plan on that row; batches report their outcomes through ``accounting.record_outcome``.
An operator's run-now (admin's "Run selected tasks") is its own slot and always runs.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from .accounting import close_overdue_runs, record_outcome, record_plan, run_deadline
from .models import DispatchRun
from .ticks import origin_of

logger = logging.getLogger(__name__)

# Batch tasks and the retry policy import the accounting entry points from here as well.
__all__ = [
    "Claim",
    "claim_slot",
    "dispatch_batches",
    "record_outcome",
    "record_plan",
    "run_once_per_tick",
    "schedule_lock",
]

# Without an interval schedule row (crontab, an operator's "run now", a test) slots are this long.
DEFAULT_SLOT_SECONDS = 60
# An operator's run-now waits this long for a dispatcher deciding at the same moment.
MANUAL_LOCK_WAIT = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to dispatch: a run to fill in, or why there is none."""

    run: DispatchRun | None
    reason: str = ""


def slot_seconds(schedule: str) -> int:
    """Length of one slot of a schedule: its interval, or a minute for crontab and unknown ones."""
    row = PeriodicTask.objects.filter(name=schedule).select_related("interval").first()
    if row is not None and row.interval is not None:
        return max(1, int(row.schedule.run_every.total_seconds()))
    return DEFAULT_SLOT_SECONDS


def slot_start(moment: datetime, seconds: int) -> datetime:
    """The start of the slot ``moment`` falls in, slots aligned to the epoch."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def lock_key(schedule: str) -> str:
    """Cache key of a schedule's lock (schedule names hold spaces; cache keys should not)."""
    return "dispatch-lock:" + hashlib.sha1(schedule.encode()).hexdigest()


@contextmanager
def schedule_lock(schedule: str, ttl: int, wait: float = 0) -> Iterator[bool]:
    """Hold a TTL'd lock for ``schedule``, waiting up to ``wait`` seconds; yields whether it was acquired.

    Released only by its owner.
    """
    key = lock_key(schedule)
    owner = uuid.uuid4().hex
    acquired = cache.add(key, owner, timeout=ttl)
    give_up = time.monotonic() + wait
    while not acquired and time.monotonic() < give_up:
        time.sleep(0.1)
        acquired = cache.add(key, owner, timeout=ttl)
    try:
        yield acquired
    finally:
        # Owner check: after our TTL ran out another dispatcher may hold the lock now.
        if acquired and cache.get(key) == owner:
            cache.delete(key)


def claim_slot(
    schedule: str,
    *,
    tick: datetime | None = None,
    task_id: str = "",
    planned: int = 0,
    now: datetime | None = None,
) -> Claim:
    """Claim the slot of ``tick`` (a beat tick) or a slot of its own (``tick`` None: an operator's run-now).

    A redelivery or retry of the task that claimed a run continues that run. Overdue runs of the
    schedule are closed first. A beat tick is skipped while the previous run is open (before its
    deadline) or when its slot is taken; an operator's run always runs. Every skip leaves a
    ``skipped`` row with the reason.
    """
    now = now or timezone.now()
    if task_id:
        mine = DispatchRun.objects.filter(task_id=task_id).exclude(status=DispatchRun.Status.SKIPPED).first()
        if mine is not None:
            return Claim(mine)
    interval = slot_seconds(schedule)
    slot = slot_start(tick, interval) if tick is not None else now
    with schedule_lock(schedule, settings.DISPATCH_LOCK_TTL, wait=0 if tick is not None else MANUAL_LOCK_WAIT) as held:
        if not held:
            return _skip(schedule, slot, task_id, "locked", "another dispatcher of this schedule holds the lock")
        close_overdue_runs(schedule, now)
        note = ""
        claimed = DispatchRun.objects.filter(schedule=schedule).exclude(status=DispatchRun.Status.SKIPPED)
        previous = claimed.filter(slot__lt=slot).first()
        if previous is not None and previous.is_open:
            pending = f"run {previous.pk} still has {previous.missing} of {previous.planned} assets pending"
            if tick is not None:
                return _skip(schedule, slot, task_id, "previous run open", pending)
            note = f"run now by an operator while {pending}"
        if tick is not None:
            # Two beats tick at their own phases: ticks of one beat cycle can straddle a slot
            # boundary. A run whose tick is closer than half an interval is the same cycle.
            half = timedelta(seconds=interval / 2)
            twin = claimed.exclude(slot=slot).filter(tick_at__gt=tick - half, tick_at__lt=tick + half).first()
            if twin is not None:
                return _skip(
                    schedule,
                    slot,
                    task_id,
                    "doubled tick",
                    f"run {twin.pk} ran the tick beat sent at {twin.tick_at.isoformat()}",
                )
        try:
            with transaction.atomic():
                run = DispatchRun.objects.create(
                    schedule=schedule,
                    slot=slot,
                    tick_at=tick,
                    task_id=task_id,
                    planned=planned,
                    batches=1 if planned else 0,
                    deadline=run_deadline(now, interval),
                    note=note,
                )
        except IntegrityError:
            return _skip(schedule, slot, task_id, "slot taken", "a run of this slot exists (doubled tick)")
    return Claim(run)


def _skip(schedule: str, slot: datetime, task_id: str, reason: str, detail: str) -> Claim:
    """Log and record a skipped tick (one row per skip; skipped rows never claim a slot)."""
    logger.warning("run of %s for %s skipped: %s", schedule, slot.isoformat(), detail)
    DispatchRun.objects.create(
        schedule=schedule,
        slot=slot,
        task_id=task_id,
        status=DispatchRun.Status.SKIPPED,
        finished_at=timezone.now(),
        note=f"{reason}: {detail}"[:300],
    )
    return Claim(None, reason)


def dispatch_batches(
    schedule: str,
    *,
    plan: Callable[[], Sequence[Sequence[object]]],
    send: Callable[[list[object], int, int], object],
    tick: datetime | None = None,
    task_id: str = "",
) -> dict[str, object]:
    """Claim the slot, plan the batches, record the plan and send each batch with the run's id and its index.

    A redelivered dispatcher continues its own run and sends the batches again under the same
    indices: their outcomes merge per batch, so nothing counts twice.
    """
    claim = claim_slot(schedule, tick=tick, task_id=task_id)
    if claim.run is None:
        return {"schedule": schedule, "skipped": claim.reason}
    batches = [list(batch) for batch in plan()]
    assets = sum(map(len, batches))
    record_plan(claim.run.pk, assets=assets, batches=len(batches))
    for index, batch in enumerate(batches):
        send(batch, claim.run.pk, index)
    logger.info("dispatched %d batches (%d assets) for %s", len(batches), assets, schedule)
    return {"schedule": schedule, "run": claim.run.pk, "batches": len(batches), "assets": assets}


def run_once_per_tick(request: Any, *, name: str, work: Callable[[], T]) -> T | dict[str, object]:
    """Run a periodic task's ``work`` once per slot, whichever beat sent the tick; record the run.

    ``request`` is the task's request. Without a schedule name (code or a test called the task)
    the work simply runs. The run is one planned item, ``name``, in batch 0: done when the work
    returns; ``ReliableTask.on_failure`` counts it failed (through ``request.dispatch_run_id``).
    """
    origin = origin_of(request)
    if origin.schedule is None:
        return work()
    claim = claim_slot(origin.schedule, tick=origin.tick, task_id=request.id or "", planned=1)
    if claim.run is None:
        return {"schedule": origin.schedule, "skipped": claim.reason}
    request.dispatch_run_id = claim.run.pk
    result = work()
    record_outcome(claim.run.pk, 0, done=[name])
    return result
