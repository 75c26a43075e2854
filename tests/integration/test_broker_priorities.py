"""Priorities as the broker serves them: messages waiting in a queue run most urgent first, on each broker.

The platform's numbers are 0 (most urgent) to 9. Redis files them into ten lists per queue; RabbitMQ
serves higher numbers first, so they are mirrored on the wire (``backend/tasks/priority.py``). Either
way, messages queued in the worst order (least urgent first) while no worker runs must come out
most urgent first, and a message sent without a priority last.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from backend.core.celery import app
from tests.fixtures.services import require_service
from tests.fixtures.waiting import wait_until
from tests.fixtures.worker import swapped_worker

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

WORKER_ENV = {"FINANCEHUB_EXTRA_TASK_MODULES": "tests.fixtures.failing_tasks"}
# medium's band (4-7), least urgent first, three messages each.
PRIORITIES = [7, 7, 7, 6, 6, 6, 5, 5, 5, 4, 4, 4]


def test_queued_messages_run_most_urgent_first_and_unprioritised_ones_last(
    celery_worker_process, django_db_blocker, broker, tmp_path: Path
) -> None:
    if broker == "filesystem":
        # make run's embedded broker keeps each queue in arrival order: no priorities to test there
        # (docs/TASK_QUEUE_ARCHITECTURE.md). The configured broker's run is Redis's.
        require_service("redis")
    ran = tmp_path / f"order-{uuid.uuid4().hex[:6]}.txt"

    def queue_in_the_worst_order() -> None:
        for index, priority in enumerate(PRIORITIES):
            app.send_task(
                "tests.append_line", args=[str(ran), f"{priority}:{index}"], queue="medium", priority=priority
            )
        # A .delay(), a run-now, a replay: no priority chosen, so the least urgent, never the first.
        app.send_task("tests.append_line", args=[str(ran), "none:0"], queue="medium")

    # One process: the order the broker hands messages out is the order they run.
    with swapped_worker(
        celery_worker_process, WORKER_ENV, django_db_blocker, concurrency=1, while_stopped=queue_in_the_worst_order
    ):
        wait_until(lambda: ran.exists() and len(ran.read_text().splitlines()) == len(PRIORITIES) + 1, timeout=60)
    order = [line.split(":")[0] for line in ran.read_text().splitlines()]
    assert order == [*map(str, sorted(PRIORITIES)), "none"], f"{broker}: {order}"
