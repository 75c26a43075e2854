"""Guarded dispatch: one run per (schedule, slot), never overlapping an open run, every run accounted.

Two beat processes, or one beat around a schedule change, can send the same tick twice; a slow run
can still be fanning out when the next tick arrives. Every dispatcher therefore:
1. takes a short lock per schedule (TTL'd, owner-checked) so two dispatchers never decide at once;
2. skips, logs and records the tick when the schedule's previous run is still open;
3. claims (schedule, slot) with a unique row, so a doubled tick finds the slot taken and does nothing;
4. records the plan on that row; batches report their outcomes through ``accounting.record_outcome``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from .accounting import record_outcome, record_plan
from .runs import DispatchRun

logger = logging.getLogger(__name__)

# Batch tasks and the retry policy import the accounting entry points from here as well.
__all__ = ["Claim", "claim_slot", "dispatch_batches", "record_outcome", "record_plan", "schedule_lock"]

# Without a schedule row (an operator's "run now", a test) slots are this long.
DEFAULT_SLOT_SECONDS = 60


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
def schedule_lock(schedule: str, ttl: int) -> Iterator[bool]:
    """Hold a TTL'd lock for ``schedule``; yields whether it was acquired. Released only by its owner."""
    key = lock_key(schedule)
    owner = uuid.uuid4().hex
    acquired = cache.add(key, owner, timeout=ttl)
    try:
        yield acquired
    finally:
        # Owner check: after our TTL ran out another dispatcher may hold the lock now.
        if acquired and cache.get(key) == owner:
            cache.delete(key)


def claim_slot(schedule: str, now: datetime | None = None, *, periodic: bool = True) -> Claim:
    """Claim this tick's slot for ``schedule`` unless it is taken or the previous run is still open.

    A run that beat did not send (an operator's "run now", a replay) is its own slot: it is never
    mistaken for a doubled tick, but it still waits for an open run to finish.
    """
    now = now or timezone.now()
    slot = slot_start(now, slot_seconds(schedule)) if periodic else now
    with schedule_lock(schedule, settings.DISPATCH_LOCK_TTL) as acquired:
        if not acquired:
            logger.warning("dispatch of %s skipped: another dispatcher holds the lock", schedule)
            return Claim(None, "locked")
        previous = DispatchRun.objects.filter(schedule=schedule, slot__lt=slot).exclude(status="skipped").first()
        grace = timedelta(seconds=settings.DISPATCH_OPEN_RUN_GRACE)
        if previous is not None and previous.is_open and now - previous.started_at < grace:
            logger.warning(
                "dispatch of %s for %s skipped: run %s still has %d of %d assets pending",
                schedule,
                slot.isoformat(),
                previous.pk,
                previous.planned - previous.done - previous.failed,
                previous.planned,
            )
            _record_skip(schedule, slot, f"previous run {previous.pk} still open")
            return Claim(None, "previous run open")
        try:
            with transaction.atomic():
                run = DispatchRun.objects.create(schedule=schedule, slot=slot)
        except IntegrityError:
            logger.info("dispatch of %s for %s skipped: slot already dispatched", schedule, slot.isoformat())
            return Claim(None, "slot taken")
    return Claim(run)


def _record_skip(schedule: str, slot: datetime, note: str) -> None:
    try:
        with transaction.atomic():
            DispatchRun.objects.create(schedule=schedule, slot=slot, status=DispatchRun.Status.SKIPPED, note=note)
    except IntegrityError:
        pass  # this slot was already recorded (dispatched or skipped): one row per slot is the point


def dispatch_batches(
    schedule: str,
    *,
    plan: Callable[[], Sequence[Sequence[object]]],
    send: Callable[[list[object], int, int], object],
    periodic: bool = True,
) -> dict[str, object]:
    """Claim the slot, plan the batches, record the plan and send each batch with the run's id and its index."""
    claim = claim_slot(schedule, periodic=periodic)
    if claim.run is None:
        return {"schedule": schedule, "skipped": claim.reason}
    batches = [list(batch) for batch in plan()]
    assets = sum(map(len, batches))
    record_plan(claim.run.pk, assets=assets, batches=len(batches))
    for index, batch in enumerate(batches):
        send(batch, claim.run.pk, index)
    logger.info("dispatched %d batches (%d assets) for %s", len(batches), assets, schedule)
    return {"schedule": schedule, "run": claim.run.pk, "batches": len(batches), "assets": assets}
