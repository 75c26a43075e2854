"""The oldest waiting message of a queue, read from the real broker by its publish stamp."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from backend.core.celery import app
from backend.monitoring.dashboard.queue_wait import oldest_waits, sent_at

REDIS = settings.CELERY_BROKER_URL.startswith("redis")


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue no worker consumes (a session worker may be running on the declared ones)."""
    name = f"dashboard-wait-{uuid.uuid4().hex[:8]}"
    yield name
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


def send(queue: str, *, priority: int = 9) -> None:
    """Publish a task message; the publisher stamps the time it was sent (backend.tasks.telemetry)."""
    app.send_task("tests.nothing", queue=queue, priority=priority)


@pytest.mark.redis
def test_the_oldest_message_across_priorities_sets_the_wait(queue: str) -> None:
    assert oldest_waits([queue]) == {queue: None}  # nothing waiting
    send(queue, priority=2)  # the oldest, alone in its priority list
    time.sleep(0.5)
    send(queue, priority=9)
    send(queue, priority=9)
    now = time.time()
    wait = oldest_waits([queue], now=now)[queue]
    assert wait is not None and 0.5 <= wait < 5
    assert oldest_waits([queue], now=now + 60)[queue] == pytest.approx(wait + 60)


@pytest.mark.skipif(REDIS, reason="the filesystem broker's case")
def test_another_broker_is_not_measured(queue: str) -> None:
    send(queue)
    assert oldest_waits([queue]) == {}


def test_a_beat_tick_stamp_counts_and_junk_does_not() -> None:
    assert sent_at(json.dumps({"headers": {"financehub_beat_sent_at": 1700000000.5}})) == 1700000000.5
    assert sent_at(json.dumps({"headers": {"financehub_sent_at": "x"}})) is None
    assert sent_at(b"not json") is None
