"""What the dashboard's charts read: counts per time bucket, one grouped query each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from backend.deadletters.models import DeadLetter
from backend.monitoring.dashboard import series
from backend.tasks.models import DispatchBatch, DispatchRun

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 15, 3, tzinfo=UTC)  # a Tuesday in the New York session
BUCKET = timedelta(minutes=10)


def result(status: str, done: datetime) -> None:
    row = TaskResult.objects.create(task_id=str(uuid.uuid4()), task_name="quotes.fetch", status=status)
    TaskResult.objects.filter(pk=row.pk).update(date_done=done)  # date_done is auto_now


def values(ts: series.TimeSeries) -> dict[str, tuple[float, ...]]:
    return {s.name: s.values for s in ts.series}


def test_task_results_are_counted_per_bucket_by_final_state() -> None:
    result("SUCCESS", NOW - timedelta(minutes=1))  # bucket 15:00
    result("SUCCESS", NOW - timedelta(minutes=2))
    result("FAILURE", NOW - timedelta(minutes=2, seconds=30))
    result("SUCCESS", NOW - timedelta(minutes=4))  # 14:59: the bucket before
    result("STARTED", NOW - timedelta(minutes=4))
    result("SUCCESS", NOW - timedelta(hours=7))  # outside the window

    ts = series.task_results(NOW, window=timedelta(hours=1), bucket=BUCKET)

    assert len(ts.starts) == 6 and ts.starts[-1] == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    got = values(ts)
    assert got["succeeded"][-2:] == (1.0, 2.0)
    assert got["failed"][-1] == 1.0 and got["other"][-2] == 1.0
    assert sum(s.total for s in ts.series) == 5


def test_batches_that_store_no_result_row_count_as_succeeded_from_their_run(settings) -> None:
    settings.BATCH_TASK_RESULTS = False
    run = DispatchRun.objects.create(schedule="quotes: crypto", slot=NOW, planned=3)
    DispatchBatch.objects.create(run=run, index=0, done=["BTC"], done_count=1)
    DispatchBatch.objects.create(run=run, index=1, failed=["ETH"], failed_count=1)  # has its FAILURE row
    DispatchBatch.objects.filter(run=run).update(updated_at=NOW - timedelta(minutes=1))
    result("FAILURE", NOW - timedelta(minutes=1))

    got = values(series.task_results(NOW, window=timedelta(hours=1), bucket=BUCKET))
    assert (got["succeeded"][-1], got["failed"][-1]) == (1.0, 1.0)
    settings.BATCH_TASK_RESULTS = True  # every batch has its own result row: nothing added
    assert values(series.task_results(NOW, window=timedelta(hours=1), bucket=BUCKET))["succeeded"][-1] == 0.0


def test_dead_letters_are_counted_by_their_first_failure_per_task() -> None:
    for task, minutes in (("quotes.fetch", 1), ("quotes.fetch", 2), ("indicators.compute", 25)):
        when = NOW - timedelta(minutes=minutes)
        DeadLetter.objects.create(task_id=str(uuid.uuid4()), task_name=task, first_failure_at=when, last_failure_at=NOW)
    got = values(series.dead_letters(NOW, window=timedelta(hours=1), bucket=BUCKET))
    assert got["quotes.fetch"][-1] == 2.0
    assert got["indicators.compute"][-4] == 1.0  # 14:38 falls in the 14:30 bucket, three before 15:00


def test_dispatch_outcomes_sum_done_failed_and_missing_and_tick_wait_is_measured() -> None:
    def run(slot_minutes: int, planned: int, done: int, failed: int, wait: float | None, **extra) -> None:
        started = NOW - timedelta(minutes=slot_minutes)
        row = DispatchRun.objects.create(
            schedule="quotes.dispatch:crypto",
            slot=started,
            planned=planned,
            done=done,
            failed=failed,
            tick_at=None if wait is None else started - timedelta(seconds=wait),
            **extra,
        )
        DispatchRun.objects.filter(pk=row.pk).update(started_at=started)

    run(1, planned=10, done=7, failed=1, wait=0.5)
    run(2, planned=5, done=5, failed=0, wait=2.5)
    run(3, planned=0, done=0, failed=0, wait=None, status=DispatchRun.Status.SKIPPED, note="doubled tick")

    got = values(series.dispatch_outcomes(NOW, window=timedelta(hours=1), bucket=BUCKET))
    assert (got["done"][-1], got["failed"][-1], got["missing"][-1]) == (12.0, 1.0, 2.0)
    wait = values(series.tick_wait(NOW, window=timedelta(hours=1), bucket=BUCKET))
    assert wait["average"][-1] == pytest.approx(1.5, abs=0.01)
    assert wait["worst"][-1] == pytest.approx(2.5, abs=0.01)


def test_an_empty_window_has_zero_buckets_not_missing_ones() -> None:
    ts = series.task_results(timezone.now())
    assert len(ts.starts) == 36 and ts.empty
