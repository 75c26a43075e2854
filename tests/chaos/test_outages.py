"""The broker or the database goes away mid-fan-out: the work waits for it, then completes once.

An outage of the store is not the task's failure: no dead letter, no run left open, nothing lost.
"""

from __future__ import annotations

import time

import pytest

from .accounting import Finding
from .scenario import explain, finish, start_quote_run

pytestmark = pytest.mark.chaos

POSTGRES_DOWN_SECONDS = 30
REDIS_DOWN_SECONDS = 5
# Measured from the moment the service is back.
OUTAGE_RECOVERY_BOUND = 150


def worker_survived(run) -> Finding:
    alive = run.worker.alive()
    return Finding("the worker rode out the outage", alive, "still running" if alive else "exited")


def test_redis_restart_mid_fan_out_with_1200_assets(stack) -> None:
    run = start_quote_run(stack, assets=1200, batch_size=50, hang=1.0)
    run.wait_in_flight()
    # A clean restart, as a deploy or a crash-and-restart with the append-only file does it.
    stack.services.redis.stop()
    time.sleep(REDIS_DOWN_SECONDS)
    stack.services.redis.start()
    back = time.monotonic()
    verdict = finish(
        run, f"Redis restart ({REDIS_DOWN_SECONDS} s down, 1200 assets)", fault_over=back,
        bound=OUTAGE_RECOVERY_BOUND, checks=[lambda: worker_survived(run)],
    )  # fmt: skip
    assert verdict.ok, explain(verdict, stack)


def test_postgres_down_30_seconds_while_batches_run_and_fail(stack) -> None:
    run = start_quote_run(stack, assets=1200, batch_size=50, hang=1.0)
    run.wait_in_flight()
    stack.services.postgres.stop("fast")
    time.sleep(POSTGRES_DOWN_SECONDS)
    stack.services.postgres.start()
    back = time.monotonic()
    verdict = finish(
        run, f"PostgreSQL down {POSTGRES_DOWN_SECONDS} s (1200 assets)", fault_over=back,
        bound=OUTAGE_RECOVERY_BOUND, checks=[lambda: worker_survived(run)],
    )  # fmt: skip
    assert verdict.ok, explain(verdict, stack)
