"""The broker or the database goes away mid-fan-out: the work waits for it, then completes once.

An outage of the store is not the task's failure: no dead letter, no run left open, nothing lost.
"""

from __future__ import annotations

import time

import pytest

from .accounting import Finding
from .scenario import QuoteRun, explain, fault_in_flight

pytestmark = pytest.mark.chaos

POSTGRES_DOWN_SECONDS = 30
REDIS_DOWN_SECONDS = 5
RABBITMQ_DOWN_SECONDS = 5
# Measured from the moment the service is back.
OUTAGE_RECOVERY_BOUND = 150


def worker_survived(run: QuoteRun) -> Finding:
    alive = run.worker.alive()
    return Finding("the worker rode out the outage", alive, "still running" if alive else "exited")


def outage(stack, scenario: str, service, seconds: float, *stop_args: str) -> None:
    """Stop ``service`` for ``seconds`` mid-fan-out over 1200 assets; the run must recover and the worker live."""

    def stop_and_start(run: QuoteRun) -> float:
        service.stop(*stop_args)
        time.sleep(seconds)
        service.start()
        return time.monotonic()

    verdict = fault_in_flight(
        stack, scenario, stop_and_start, assets=1200, batch_size=50, bound=OUTAGE_RECOVERY_BOUND,
        checks=[worker_survived],
    )  # fmt: skip
    assert verdict.ok, explain(verdict, stack)


def test_redis_restart_mid_fan_out_with_1200_assets(stack) -> None:
    # A clean restart, as a deploy or a crash-and-restart with the append-only file does it.
    scenario = f"Redis restart ({REDIS_DOWN_SECONDS} s down, 1200 assets)"
    outage(stack, scenario, stack.services.redis, REDIS_DOWN_SECONDS)


@pytest.mark.parametrize("chaos_broker", ["amqp"], indirect=True)
def test_rabbitmq_restart_mid_fan_out_with_1200_assets(stack, chaos_rabbit) -> None:
    # The private node shut down cleanly and started again on its data: durable queues, persistent
    # messages; what workers held unacknowledged goes back to its queue.
    scenario = f"RabbitMQ restart ({RABBITMQ_DOWN_SECONDS} s down, 1200 assets)"
    outage(stack, scenario, chaos_rabbit, RABBITMQ_DOWN_SECONDS)


def test_postgres_down_30_seconds_while_batches_run_and_fail(stack) -> None:
    scenario = f"PostgreSQL down {POSTGRES_DOWN_SECONDS} s (1200 assets)"
    outage(stack, scenario, stack.services.postgres, POSTGRES_DOWN_SECONDS, "fast")
