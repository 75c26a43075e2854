"""Task events reach a receiver (Flower) although the worker publishes them in batches."""

from __future__ import annotations

import time

import pytest

from backend.tasks.tasks import fetch_quotes
from tests.integration.test_deadletters_worker import recorded_events

pytestmark = pytest.mark.integration


def test_every_task_event_flower_needs_arrives_for_each_task_of_a_burst(live_worker, make_asset) -> None:
    make_asset("AAPL", "stock")
    with recorded_events() as events:
        results = [fetch_quotes.delay("stock", ["AAPL"]) for _ in range(10)]
        for result in results:
            result.get(timeout=30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(e["type"] == "task-succeeded" for e in events) < len(results):
            time.sleep(0.1)

    for result in results:
        kinds = {e["type"] for e in events if e.get("uuid") == result.id}
        assert {"task-sent", "task-received", "task-started", "task-succeeded"} <= kinds, kinds
