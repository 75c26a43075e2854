"""Run accounting: what each batch of a run stored or finally failed, idempotent per batch.

A batch message can be delivered more than once (its worker died after recording, a retry ran
the failed subset again). Each batch therefore keeps the SETS of its done and failed items; a
repeated record is a union, so it changes nothing, and an item a later delivery stored moves from
failed to done. A run's done/failed counts are derived from its batches in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import DispatchBatch, DispatchRun

logger = logging.getLogger(__name__)

Item = str | int


def record_plan(run_id: int, *, assets: int, batches: int) -> None:
    """Store how many assets and batches a run fanned out to; an empty plan closes the run."""
    fields: dict[str, object] = {"planned": assets, "batches": batches}
    if assets == 0:
        fields.update(status=DispatchRun.Status.DONE, finished_at=timezone.now())
    DispatchRun.objects.filter(pk=run_id).update(**fields)


def _sorted(items: set[Item]) -> list[Item]:
    # Items of one batch share a type (symbols or ids); ints first keeps a mixed set sortable anyway.
    return sorted(items, key=lambda item: (isinstance(item, str), item))


def record_outcome(
    run_id: int | None, batch: int | None, *, done: Iterable[Item] = (), failed: Iterable[Item] = ()
) -> None:
    """Merge one delivery's outcome into its batch and re-derive the run's counts; idempotent.

    ``done`` items are added to the batch's done set; ``failed`` items to its failed set unless
    they are done. The run closes (``done``) once every planned asset is accounted; a run the
    deadline already closed as ``incomplete`` still takes late outcomes and becomes ``done`` when
    they complete it.
    """
    if run_id is None:
        return
    done_now, failed_now = set(done), set(failed)
    index = DispatchBatch.UNNUMBERED if batch is None else batch
    with transaction.atomic():
        # The run row's lock serialises every outcome of the run: batch rows and sums stay consistent.
        run = DispatchRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            logger.warning("outcome for unknown dispatch run %s (batch %s) dropped", run_id, batch)
            return
        # Under the run's lock nobody else writes its batch rows: one read of every batch's counts (the
        # run's totals) and this batch's sets only when it has a row (a repeat delivery, a retry's subset).
        counts = {i: (d, f) for i, d, f in run.batch_outcomes.values_list("index", "done_count", "failed_count")}
        row = DispatchBatch.objects.filter(run=run, index=index).first() if index in counts else None
        recorded_done, recorded_failed = (set(row.done), set(row.failed)) if row else (set(), set())
        done_set = recorded_done | done_now
        failed_set = (recorded_failed | failed_now) - done_set
        if row is not None and done_set == recorded_done and failed_set == recorded_failed:
            return  # a repeat of what is recorded: nothing to change
        done_count, failed_count = counts[index] = len(done_set), len(failed_set)
        fields = {
            "done": _sorted(done_set),
            "failed": _sorted(failed_set),
            "done_count": done_count,
            "failed_count": failed_count,
        }
        if row is None:
            DispatchBatch.objects.create(run=run, index=index, **fields)
        else:
            DispatchBatch.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
        _derive_counts(run, sum(d for d, _ in counts.values()), sum(f for _, f in counts.values()))


def _derive_counts(run: DispatchRun, done: int, failed: int) -> None:
    """Set the run's done/failed from its batches' totals (never past the plan) and close it when complete."""
    run.done = min(run.planned, done)
    run.failed = min(run.planned - run.done, failed)
    update = ["done", "failed"]
    if run.planned and run.missing == 0 and run.status in (DispatchRun.Status.RUNNING, DispatchRun.Status.INCOMPLETE):
        if run.status == DispatchRun.Status.INCOMPLETE:
            run.note = f"{run.note} (late outcomes completed it)"[:300]
            update.append("note")
        run.status = DispatchRun.Status.DONE
        run.finished_at = timezone.now()
        update += ["status", "finished_at"]
    run.save(update_fields=update)


def run_deadline(start: datetime, interval_seconds: float) -> datetime:
    """When a run started at ``start`` must be accounted: one schedule interval plus the hard time limit.

    By then every batch was delivered (the queue drains within an interval when the platform keeps
    up) and ran to its hard limit; what is still unaccounted was lost or is stuck in retries.
    """
    return start + timedelta(seconds=interval_seconds + settings.CELERY_TASK_TIME_LIMIT)


def close_overdue_runs(schedule: str | None = None, now: datetime | None = None) -> list[int]:
    """Close every running run past its deadline as ``incomplete``, counting what never reported.

    Called by the next claim of the schedule and by the heartbeat; returns the closed runs' ids.
    """
    now = now or timezone.now()
    overdue = DispatchRun.objects.filter(status=DispatchRun.Status.RUNNING, deadline__lt=now)
    if schedule is not None:
        overdue = overdue.filter(schedule=schedule)
    closed: list[int] = []
    for run_id in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            run = DispatchRun.objects.select_for_update().filter(pk=run_id, status=DispatchRun.Status.RUNNING).first()
            if run is None:
                continue  # another closer (or the last outcome) got there first
            reported = run.batch_outcomes.exclude(index=DispatchBatch.UNNUMBERED).count()
            missing_batches = max(0, run.batches - reported)
            if run.planned == 0 and run.batches == 0:
                note = "closed at its deadline: the dispatcher never recorded a plan"
            else:
                note = (
                    f"closed at its deadline: {run.missing} of {run.planned} assets unaccounted, "
                    f"{missing_batches} of {run.batches} batches never reported"
                )
            run.status, run.finished_at = DispatchRun.Status.INCOMPLETE, now
            run.note = f"{run.note}; {note}"[:300] if run.note else note
            run.save(update_fields=["status", "finished_at", "note"])
        logger.warning("dispatch run %s (%s) %s", run.pk, run.schedule, note)
        closed.append(run.pk)
    return closed
