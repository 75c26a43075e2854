"""A task that kills its pool process on every delivery: dead-lettered after the cap, nothing else hurt."""

from __future__ import annotations

import time

import pytest

from . import observe
from .accounting import Finding
from .scenario import ON_BOTH_BROKERS, explain, finish, start_quote_run

pytestmark = pytest.mark.chaos

POISON = "tests.kill_worker"


def poison_run(stack, *, assets: int, bound: float, cap: int):
    run = start_quote_run(stack, assets=assets, batch_size=20, worker_env={"DEADLETTER_MAX_DELIVERIES": str(cap)})
    stack.send(POISON, queue="medium")
    sent_at = time.monotonic()

    def poison_dead_lettered() -> bool:
        return any(d.task_name == POISON for d in observe.dead_letters())

    def deliveries_capped() -> Finding:
        delivered = observe.log_facts(stack.logs(), POISON).deliveries
        count = max(delivered.values(), default=0)
        letters = [d for d in observe.dead_letter_rows() if d.task_name == POISON]
        return Finding(
            f"poison delivered at most cap+1={cap + 1} times, then one dead letter",
            count <= cap + 1 and len(letters) == 1,
            f"delivered {count} times, {len(letters)} dead letter(s)"
            + (f" recording {letters[0].deliveries} deliveries" if letters else ""),
        )

    return finish(
        run, f"poison task (cap {cap}) beside {assets} assets", fault_over=sent_at, bound=bound,
        expected_dead_letters=1, checks=[deliveries_capped], until=poison_dead_lettered, patience=bound + 10,
    )  # fmt: skip


@pytest.mark.chaos_short
@ON_BOTH_BROKERS
def test_a_poison_task_is_dead_lettered_after_the_cap_while_other_work_completes__short(stack) -> None:
    verdict = poison_run(stack, assets=60, bound=60, cap=3)
    assert verdict.ok, explain(verdict, stack)


def test_with_the_poison_cap_disabled_the_checker_goes_red(stack) -> None:
    """The protection off (DEADLETTER_MAX_DELIVERIES=0): the poison loops and the checker says so."""
    verdict = poison_run(stack, assets=60, bound=30, cap=0)
    assert not verdict.ok
    assert any("dead letters" in f or "never recovered" in f for f in verdict.failures), verdict.failures
