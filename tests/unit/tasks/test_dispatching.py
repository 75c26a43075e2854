"""Guarded dispatch: one run per slot, no overlap with an open run, honest fan-out accounting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from backend.tasks.dispatching import claim_slot, dispatch_batches, lock_key, record_outcome, record_plan, schedule_lock
from backend.tasks.runs import DispatchRun

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 27, 12, 0, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clear_locks():
    cache.clear()
    yield
    cache.clear()


def test_a_doubled_tick_in_the_same_slot_dispatches_once() -> None:
    first = claim_slot("quotes: crypto", now=T0)
    second = claim_slot("quotes: crypto", now=T0 + timedelta(seconds=20))
    assert first.run is not None
    assert second.run is None and second.reason == "slot taken"
    assert DispatchRun.objects.count() == 1


def test_the_next_tick_is_skipped_and_recorded_while_the_previous_run_is_open() -> None:
    run = claim_slot("quotes: crypto", now=T0).run
    record_plan(run.pk, assets=10, batches=1)
    DispatchRun.objects.filter(pk=run.pk).update(started_at=T0)
    skipped = claim_slot("quotes: crypto", now=T0 + timedelta(seconds=60))
    assert skipped.run is None and skipped.reason == "previous run open"
    assert DispatchRun.objects.filter(status="skipped").count() == 1


def test_the_next_tick_goes_ahead_once_the_previous_run_is_accounted() -> None:
    run = claim_slot("quotes: crypto", now=T0).run
    record_plan(run.pk, assets=10, batches=2)
    record_outcome(run.pk, 0, done=["A", "B", "C", "D", "E", "F"])
    record_outcome(run.pk, 1, done=["G", "H", "I"], failed=["J"])
    run.refresh_from_db()
    assert (run.status, run.done, run.failed, run.completeness) == ("done", 9, 1, 90.0)
    assert claim_slot("quotes: crypto", now=T0 + timedelta(seconds=60)).run is not None


def test_an_open_run_older_than_the_grace_period_does_not_block_forever(settings) -> None:
    settings.DISPATCH_OPEN_RUN_GRACE = 120
    run = claim_slot("quotes: crypto", now=T0).run
    record_plan(run.pk, assets=10, batches=1)
    DispatchRun.objects.filter(pk=run.pk).update(started_at=T0)
    assert claim_slot("quotes: crypto", now=T0 + timedelta(seconds=300)).run is not None


def test_a_held_lock_makes_a_concurrent_dispatcher_skip() -> None:
    with schedule_lock("quotes: stock", ttl=30) as held:
        assert held
        assert claim_slot("quotes: stock", now=T0).reason == "locked"
    assert claim_slot("quotes: stock", now=T0).run is not None


def test_the_lock_is_released_only_by_its_owner() -> None:
    with schedule_lock("s", ttl=30) as held:
        assert held
        cache.set(lock_key("s"), "someone-else", 30)  # our TTL ran out and another took it
    assert cache.get(lock_key("s")) == "someone-else"


def test_dispatch_batches_sends_each_batch_with_the_run_id() -> None:
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
