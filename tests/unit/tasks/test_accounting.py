"""Run accounting is idempotent per batch: redeliveries never double count, retries move items to done."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.tasks.accounting import record_outcome, record_plan
from backend.tasks.models import DispatchBatch, DispatchRun
from backend.tasks.policy import ReliableTask

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def planned_run(assets: int, batches: int) -> DispatchRun:
    run = DispatchRun.objects.create(schedule="quotes: crypto", slot=T0)
    record_plan(run.pk, assets=assets, batches=batches)
    return run


def counts(run: DispatchRun) -> tuple[str, int, int]:
    run.refresh_from_db()
    return run.status, run.done, run.failed


def symbols(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_a_redelivered_batch_is_counted_once() -> None:
    # The case: 4 batches of 50; batches 0-1 stored, 2-3 failed, batches 0-1 recorded twice.
    run = planned_run(200, 4)
    for index in (0, 1, 0, 1):
        record_outcome(run.pk, index, done=symbols(f"B{index}-", 40), failed=symbols(f"B{index}-X", 10))
    for index in (2, 3):
        record_outcome(run.pk, index, failed=symbols(f"B{index}-", 50))
    assert counts(run) == ("done", 80, 120)


def test_recording_the_same_items_twice_changes_nothing() -> None:
    run = planned_run(5, 1)
    record_outcome(run.pk, 0, done=["A", "B"], failed=["C"])
    record_outcome(run.pk, 0, done=["A", "B"], failed=["C"])
    assert counts(run) == ("running", 2, 1)
    row = DispatchBatch.objects.get(run=run, index=0)
    assert (row.done, row.failed, row.done_count, row.failed_count) == (["A", "B"], ["C"], 2, 1)


def test_a_subset_retry_that_succeeds_moves_items_from_failed_to_done() -> None:
    run = planned_run(4, 1)
    record_outcome(run.pk, 0, done=["A", "B"], failed=["C", "D"])
    assert counts(run) == ("done", 2, 2)
    record_outcome(run.pk, 0, done=["C"])  # the retry of the failed subset stored C
    assert counts(run) == ("done", 3, 1)
    assert DispatchBatch.objects.get(run=run).failed == ["D"]


def test_a_late_failure_never_undoes_a_stored_item() -> None:
    run = planned_run(2, 1)
    record_outcome(run.pk, 0, done=["A", "B"])
    record_outcome(run.pk, 0, failed=["A", "B"])  # e.g. a redelivery that failed after the first stored
    assert counts(run) == ("done", 2, 0)


def test_outcomes_without_a_batch_index_are_still_idempotent() -> None:
    run = planned_run(3, 1)
    record_outcome(run.pk, None, done=[1, 2])
    record_outcome(run.pk, None, done=[2, 3])
    assert counts(run) == ("done", 3, 0)
    assert DispatchBatch.objects.get(run=run).index == DispatchBatch.UNNUMBERED


def test_no_run_no_accounting() -> None:
    record_outcome(None, 0, done=["A"])
    record_outcome(12345, 0, done=["A"])  # a run cleaned up meanwhile
    assert DispatchBatch.objects.count() == 0


def test_an_incomplete_run_completed_by_late_outcomes_becomes_done() -> None:
    run = planned_run(2, 2)
    DispatchRun.objects.filter(pk=run.pk).update(status=DispatchRun.Status.INCOMPLETE)
    record_outcome(run.pk, 0, done=["A"])
    assert counts(run) == ("incomplete", 1, 0)
    record_outcome(run.pk, 1, failed=["B"])
    assert counts(run) == ("done", 1, 1)


class _Batch(ReliableTask):
    name = "test.batch"


def test_a_final_failure_records_the_current_list_argument_against_its_batch() -> None:
    run = planned_run(4, 1)
    record_outcome(run.pk, 0, done=["A", "B"], failed=["C", "D"])
    task = _Batch()
    # After a subset retry the task's arguments are the failed subset only.
    task.on_failure(RuntimeError("x"), "tid", ("crypto", ["C", "D"]), {"run_id": run.pk, "batch": 0}, None)
    task.on_failure(RuntimeError("x"), "tid", ("crypto", ["C", "D"]), {"run_id": run.pk, "batch": 0}, None)
    assert counts(run) == ("done", 2, 2)
