"""Guarded periodic runs: one run per slot, no overlap with an open run, every skip recorded, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from backend.tasks.accounting import close_overdue_runs
from backend.tasks.dispatching import (
    claim_slot,
    dispatch_batches,
    lock_key,
    record_outcome,
    record_plan,
    schedule_lock,
)
from backend.tasks.models import DispatchRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

T0 = datetime(2026, 11, 27, 12, 0, 10, tzinfo=UTC)


def tick(moment: datetime, schedule: str = "quotes: crypto", **kwargs):
    """A beat tick of ``schedule`` sent at ``moment`` and taken by a worker at the same moment."""
    return claim_slot(schedule, tick=moment, now=moment, **kwargs)


def test_a_doubled_tick_in_the_same_slot_dispatches_once_and_records_the_skip() -> None:
    first = tick(T0)
    second = tick(T0 + timedelta(seconds=20))
    assert first.run is not None
    assert second.run is None and second.reason == "slot taken"
    assert DispatchRun.objects.exclude(status="skipped").count() == 1
    skipped = DispatchRun.objects.get(status="skipped")
    assert skipped.note.startswith("slot taken")


def test_the_next_tick_is_skipped_and_recorded_while_the_previous_run_is_open() -> None:
    run = tick(T0).run
    record_plan(run.pk, assets=10, batches=1)
    skipped = tick(T0 + timedelta(seconds=60))
    assert skipped.run is None and skipped.reason == "previous run open"
    row = DispatchRun.objects.get(status="skipped")
    assert "10 of 10 assets pending" in row.note


def test_the_next_tick_goes_ahead_once_the_previous_run_is_accounted() -> None:
    run = tick(T0).run
    record_plan(run.pk, assets=10, batches=2)
    record_outcome(run.pk, 0, done=["A", "B", "C", "D", "E", "F"])
    record_outcome(run.pk, 1, done=["G", "H", "I"], failed=["J"])
    run.refresh_from_db()
    assert (run.status, run.done, run.failed, run.completeness) == ("done", 9, 1, 90.0)
    assert tick(T0 + timedelta(seconds=60)).run is not None


def test_a_run_past_its_deadline_is_closed_incomplete_and_does_not_block_the_next_tick(settings) -> None:
    settings.CELERY_TASK_TIME_LIMIT = 75
    run = tick(T0).run  # no interval schedule row: 60 s slots, deadline = claim + 60 + 75 s
    record_plan(run.pk, assets=10, batches=2)
    record_outcome(run.pk, 0, done=["A", "B", "C", "D", "E"])
    assert tick(T0 + timedelta(seconds=120)).reason == "previous run open"
    nxt = tick(T0 + timedelta(seconds=180))
    assert nxt.run is not None
    run.refresh_from_db()
    assert (run.status, run.done, run.failed, run.missing) == ("incomplete", 5, 0, 5)
    assert "5 of 10 assets unaccounted, 1 of 2 batches never reported" in run.note


def test_the_heartbeat_closer_closes_overdue_runs_of_every_schedule() -> None:
    run = tick(T0).run
    record_plan(run.pk, assets=3, batches=1)
    assert close_overdue_runs(now=T0 + timedelta(seconds=60)) == []
    assert close_overdue_runs(now=run.deadline + timedelta(seconds=1)) == [run.pk]
    run.refresh_from_db()
    assert run.status == "incomplete" and run.missing == 3


def test_a_redelivered_dispatcher_continues_its_own_run() -> None:
    first = tick(T0, task_id="dispatch-1")
    again = tick(T0 + timedelta(seconds=5), task_id="dispatch-1")
    assert again.run is not None and again.run.pk == first.run.pk
    assert DispatchRun.objects.count() == 1


def test_an_operator_run_now_runs_in_its_own_slot_even_while_a_run_is_open() -> None:
    run = tick(T0).run
    record_plan(run.pk, assets=10, batches=1)
    manual = claim_slot("quotes: crypto", tick=None, now=T0 + timedelta(seconds=3))
    assert manual.run is not None and manual.run.slot == T0 + timedelta(seconds=3)
    assert "operator" in manual.run.note


def test_a_held_lock_makes_a_concurrent_tick_skip_and_records_it() -> None:
    with schedule_lock("quotes: stock", ttl=30) as held:
        assert held
        assert tick(T0, "quotes: stock").reason == "locked"
    assert DispatchRun.objects.get(status="skipped").note.startswith("locked")
    assert tick(T0, "quotes: stock").run is not None


def test_the_lock_is_released_only_by_its_owner() -> None:
    with schedule_lock("s", ttl=30) as held:
        assert held
        cache.set(lock_key("s"), "someone-else", 30)  # our TTL ran out and another took it
    assert cache.get(lock_key("s")) == "someone-else"


def test_dispatch_batches_sends_each_batch_with_the_run_id_and_its_index() -> None:
    sent = []
    result = dispatch_batches(
        "s", plan=lambda: [["A", "B"], ["C"]], send=lambda batch, run, index: sent.append((batch, run, index))
    )
    run = DispatchRun.objects.get()
    assert sent == [(["A", "B"], run.pk, 0), (["C"], run.pk, 1)]
    assert (run.planned, run.batches) == (3, 2)
    assert result["assets"] == 3


def test_an_empty_plan_closes_the_run_at_once() -> None:
    dispatch_batches("s", plan=list, send=lambda batch, run, index: None)
    assert DispatchRun.objects.get().status == "done"
