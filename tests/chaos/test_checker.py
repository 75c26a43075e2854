"""The chaos checker goes red on each kind of damage: doctored histories, one protection lost at a time.

Each history below is what a scenario would record if one protection were gone (idempotent upserts,
per-batch outcomes, the redelivery path, the poison cap, the visibility timeout); the live
counterpart that disables a protection through a setting is in test_poison.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from .accounting import DeadLetterSeen, Finding, History, RunCount, batch_items, check, settled

ITEMS = frozenset(f"C{i:04d}" for i in range(200))
OUTAGE_LETTER = DeadLetterSeen("quotes.fetch", "django.db.utils.OperationalError", ITEMS, retries=20)

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
        ("outage dead letters", replace(HEALTHY, dead_letters=(OUTAGE_LETTER,) * 3), "dead letters"),
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


# --- items retried, then dead-lettered ---------------------------------------------------------------
# The flaky-provider run under load (measured 7 December 2026): batch 5 (C0100-C0119) spent its 5 retries
# while other batches' 429s kept every provider paused; its dead letter holds the 20 symbols in its
# arguments, the run counted them failed and closed done. Before the checker read dead letters' items,
# this ledger said "lost 20", "1 dead letters, 0 expected", "never recovered".
FLAKY_ITEMS = frozenset(f"C{i:04d}" for i in range(400))
BATCH_5 = frozenset(f"C{i:04d}" for i in range(100, 120))
TRANSIENT = "backend.providers.errors.TransientProviderError"
BATCH_5_LETTER = DeadLetterSeen("quotes.fetch", TRANSIENT, BATCH_5, retries=5)
FLAKY = History(
    scenario="doctored: providers failing 50 % with Retry-After, under load",
    expected=FLAKY_ITEMS,
    stored=FLAKY_ITEMS - BATCH_5,
    recovery_bound=120,
    recovery_seconds=77.0,
    run=RunCount(1, planned=400, done=380, failed=20, status="done"),
    retries=62,
    dead_letters=(BATCH_5_LETTER,),
    accepted_dead_letter="TransientProviderError",
)


def test_items_a_retried_dead_letter_holds_are_failed_not_lost() -> None:
    verdict = check(FLAKY)
    assert verdict.ok, verdict.failures
    assert not verdict.lost
    table = verdict.table()
    assert "failed (counted)  20  (20 held by 1 dead letters)" in table
    assert "expected 0, 1 accepted: retried, then dead-lettered with TransientProviderError" in table
    assert verdict.figures()["dead_lettered_items"] == 20


@pytest.mark.parametrize(
    ("damage", "history", "expected_failure"),
    [
        # The scenario does not accept dead letters: the same ledger is red, as it was before.
        ("not accepted", replace(FLAKY, accepted_dead_letter=""), "20 items lost"),
        # Half the batch is in no dead letter: those ten are truly lost, the other ten are not.
        (
            "dead letter holds part of the batch",
            replace(FLAKY, dead_letters=(replace(BATCH_5_LETTER, items=frozenset(sorted(BATCH_5)[:10])),)),
            "10 items lost",
        ),
        # Matched by item, not by count: a dead letter of as many items, but other ones (another run's
        # batch, asset ids where symbols were expected) accounts for none of these.
        (
            "dead letter holds other items",
            replace(FLAKY, dead_letters=(replace(BATCH_5_LETTER, items=frozenset(map(str, range(100, 120)))),)),
            "20 items lost",
        ),
        # A dead letter naming no items (a platform defect): nothing accounted, and it is unexpected.
        (
            "dead letter names no items",
            replace(FLAKY, dead_letters=(replace(BATCH_5_LETTER, items=frozenset()),)),
            "1 dead letters, 0 expected",
        ),
        # Dead-lettered at its first failure (no retry): not "retried, then dead-lettered".
        ("never retried", replace(FLAKY, dead_letters=(replace(BATCH_5_LETTER, retries=0),)), "20 items lost"),
        # Another failure is not accepted by accepting the provider's: an outage must never dead-letter.
        (
            "outage dead letter",
            replace(FLAKY, dead_letters=(replace(BATCH_5_LETTER, exception_class="django.db.utils.OperationalError"),)),
            "1 dead letters, 0 expected",
        ),
        # The run closed on the batch's failed count, but no dead letter holds the batch (read before it
        # was written, or never written): the count alone accounts for nothing.
        ("run counted, no dead letter", replace(FLAKY, dead_letters=()), "20 items lost"),
        # An accepted dead letter does not excuse a miscount: the run says 0 failed for 20 dead-lettered.
        ("dead-lettered, not counted", replace(FLAKY, run=RunCount(1, 400, 380, 0, "running")), "fewer than happened"),
        # Accepted dead letters do not stand in for the ones the scenario expects (a poison's).
        (
            "expected poison missing",
            replace(FLAKY, expected_dead_letters=1),
            "0 dead letters besides 1 accepted, 1 expected",
        ),
    ],
)
def test_a_checker_that_credits_dead_letters_still_goes_red(
    damage: str, history: History, expected_failure: str
) -> None:
    verdict = check(history)
    assert not verdict.ok, damage
    assert any(expected_failure in failure for failure in verdict.failures), verdict.failures


def test_recovery_waits_for_the_dead_letter_not_only_the_runs_count() -> None:
    """The window: ``on_failure`` counts the batch failed (closing the run) before the task_failure
    signal writes its dead letter. Recovery polled in between must not call the scenario settled."""
    closed = FLAKY.run
    stored = FLAKY.stored
    accepted = FLAKY.accepted_dead_letter
    assert not settled(FLAKY_ITEMS, stored, (), accepted, closed)  # run closed, dead letter not yet written
    assert settled(FLAKY_ITEMS, stored, (BATCH_5_LETTER,), accepted, closed)  # now it is
    assert not settled(FLAKY_ITEMS, stored, (BATCH_5_LETTER,), accepted, replace(closed, status="running"))
    assert not settled(FLAKY_ITEMS, stored, (BATCH_5_LETTER,), "", closed)  # dead letters not accepted


def test_a_dead_letters_items_are_its_batch_list_in_whatever_shape_it_was_sent() -> None:
    """As ``on_failure`` counts a batch: its list argument (symbols or asset ids), else a list keyword."""
    assert batch_items(["crypto", ["C0100", "C0101"]], {"run_id": 1, "batch": 5}) == {"C0100", "C0101"}
    assert batch_items([[7, 8]], {"run_id": 1}) == {"7", "8"}  # indicator batches: asset ids
    assert batch_items([], {"asset_class": "crypto", "symbols": ["C0100"]}) == {"C0100"}  # a hand-made replay
    assert batch_items(["crypto"], {}) == frozenset()
    assert batch_items(None) == frozenset()
