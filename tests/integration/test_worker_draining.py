"""The drain between tests that share the session worker: it waits for work, and revokes what is held."""

from __future__ import annotations

import pytest

from backend.tasks.tasks import heartbeat
from tests.fixtures.draining import drain, held_tasks
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

HELD_FOR = 10  # seconds of countdown


def test_a_drain_returns_once_the_work_in_flight_has_finished(live_worker) -> None:
    result = heartbeat.delay()
    assert drain(live_worker)
    assert result.ready()


def test_a_drain_revokes_a_task_the_worker_holds_for_later_so_it_never_runs(live_worker) -> None:
    # Held long enough to be seen held and then drained: on the filesystem broker (polled every 0.2 s)
    # each control round trip takes a fraction of a second, and seeing the task held takes several.
    result = heartbeat.apply_async(countdown=HELD_FOR)
    assert wait_for(lambda: result.id in (held_tasks(live_worker) or ([], []))[1], timeout=HELD_FOR)
    assert not drain(live_worker, timeout=0.5)
    assert drain(live_worker, timeout=0.5)  # revoked: no longer counted as held
    assert wait_for(lambda: result.state == "REVOKED", timeout=HELD_FOR + 15), result.state  # dropped when due
