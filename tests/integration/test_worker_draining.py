"""The drain between tests that share the session worker: it waits for work, and revokes what is held."""

from __future__ import annotations

import pytest

from backend.tasks.tasks import heartbeat
from tests.fixtures.draining import drain, held_tasks
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_a_drain_returns_once_the_work_in_flight_has_finished(live_worker) -> None:
    result = heartbeat.delay()
    assert drain(live_worker)
    assert result.ready()


def test_a_drain_revokes_a_task_the_worker_holds_for_later_so_it_never_runs(live_worker) -> None:
    result = heartbeat.apply_async(countdown=3)
    assert wait_for(lambda: result.id in (held_tasks(live_worker) or ([], []))[1], timeout=10)
    assert not drain(live_worker, timeout=0.5)
    assert drain(live_worker, timeout=0.5)  # revoked: no longer counted as held
    assert wait_for(lambda: result.state == "REVOKED", timeout=15), result.state  # dropped when due
