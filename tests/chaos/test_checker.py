"""The chaos checker goes red on each kind of damage: doctored histories, one protection lost at a time.

Each history below is what a scenario would record if one protection were gone (idempotent upserts,
per-batch outcomes, the redelivery path, the poison cap, the visibility timeout); the live
counterpart that disables a protection through a setting is in test_poison.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from .accounting import Finding, History, RunCount, check

ITEMS = frozenset(f"C{i:04d}" for i in range(200))

HEALTHY = History(
    scenario="doctored",
    expected=ITEMS,
    stored=ITEMS,
    recovery_bound=60,
    recovery_seconds=4.0,
    run=RunCount(1, planned=200, done=200, failed=0, status="done"),
    deliveries={"a": 2, "b": 1, "c": 3},
    retries=1,
)


def test_a_healthy_history_passes_and_counts_re_executions() -> None:
    verdict = check(HEALTHY)
    assert verdict.ok, verdict.failures
    assert verdict.re_executions == 2  # (2-1) + (3-1) deliveries beyond the first, one of them a retry
    assert "verdict           PASS" in verdict.table()


@pytest.mark.parametrize(
    ("damage", "history", "expected_failure"),
    [
        # A killed worker's batch never redelivered (no late ack / no reject on worker loss).
        ("loss", replace(HEALTHY, stored=ITEMS - {"C0001", "C0002"}, run=RunCount(1, 200, 198, 0, "done")), "lost"),
        # Upserts replaced by inserts: a redelivered batch writes its rows again.
        ("duplicate rows", replace(HEALTHY, duplicated_rows=20), "duplicated rows"),
        # record_outcome not idempotent per batch: a redelivered batch of 40 counted twice (issue 9, item 1).
        ("double count", replace(HEALTHY, run=RunCount(1, 200, 160, 40, "done"), stored=ITEMS), "more than happened"),
        # The run's counts say complete while 40 items were never stored.
        (
            "count hides a loss",
            replace(HEALTHY, stored=ITEMS - {f"C{i:04d}" for i in range(40)}, failed_items=frozenset()),
            "lost",
        ),
        # A lost batch message and no deadline: the run stays open forever (issue 9, item 4).
        ("open run", replace(HEALTHY, run=RunCount(1, 200, 180, 0, "running"), stored=ITEMS), "still open"),
        # Outage turned into dead letters (issue 9, item 2).
        ("outage dead letters", replace(HEALTHY, dead_letters=("quotes.fetch: OperationalError",) * 3), "dead letters"),
        # Poison cap off: the poison is never dead-lettered.
        ("no poison dead letter", replace(HEALTHY, expected_dead_letters=1), "dead letters"),
        # The visibility timeout of an hour: recovery long past its bound (issue 9, item 5).
        ("slow recovery", replace(HEALTHY, recovery_seconds=96.0), "bound 60"),
        ("never recovered", replace(HEALTHY, recovery_seconds=None), "never recovered"),
        # A second beat's tick fanned out again.
        ("scenario finding", replace(HEALTHY, findings=(Finding("slot dispatched once", False, "2 runs"),)), "slot"),
    ],
)
def test_the_checker_goes_red(damage: str, history: History, expected_failure: str) -> None:
    verdict = check(history)
    assert not verdict.ok, damage
    assert any(expected_failure in failure for failure in verdict.failures), verdict.failures
    assert "verdict           FAIL" in verdict.table()


def test_items_failed_and_counted_are_not_lost() -> None:
    """Complete or failed, never silently partial: a counted failure is accounted, not lost."""
    failed = frozenset({"C0001", "C0002"})
    history = replace(HEALTHY, stored=ITEMS - failed, failed_items=failed, run=RunCount(1, 200, 198, 2, "done"))
    verdict = check(history)
    assert verdict.ok, verdict.failures
    assert not verdict.lost
