"""Every message leaves with a priority: unprioritised ones sort last, and RabbitMQ gets the mirror image."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from kombu import Exchange, Queue

from backend.core.celery import app
from backend.tasks.priority import from_broker, to_broker, unmirror_delivered_priority

# kombu's Redis transport files priority p of queue q under the list "q<sep>p" (p 0: plain "q").
SEP = "\x06\x16"


def test_a_missing_or_junk_priority_becomes_the_least_urgent() -> None:
    assert to_broker(None, mirrored=False) == 9
    assert to_broker("soon", mirrored=False) == 9
    assert to_broker(0, mirrored=False) == 0
    assert to_broker(42, mirrored=False) == 9 and to_broker(-1, mirrored=False) == 0


def test_rabbitmq_gets_the_mirror_image_and_a_worker_mirrors_it_back(settings) -> None:
    assert to_broker(0, mirrored=True) == 9 and to_broker(None, mirrored=True) == 0
    assert from_broker(to_broker(3, mirrored=True), mirrored=True) == 3
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    task = SimpleNamespace(request=SimpleNamespace(delivery_info={"priority": 9}))
    unmirror_delivered_priority(task=task)
    assert task.request.delivery_info["priority"] == 0  # a retry re-sends 0, which goes out as 9 again


@pytest.mark.redis
def test_on_redis_a_delay_style_message_lands_behind_every_routed_one() -> None:
    name = f"prio-test-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        app.send_task("bench.nothing", queue=queue)  # no priority, as .delay() or a replay sends
        app.send_task("bench.nothing", queue=queue, priority=0)
        app.send_task("bench.nothing", queue=queue, priority=4)
        assert client.llen(name) == 1
        assert client.llen(f"{name}{SEP}4") == 1
        assert client.llen(f"{name}{SEP}9") == 1
    finally:
        client.delete(name, *(f"{name}{SEP}{p}" for p in range(10)))
