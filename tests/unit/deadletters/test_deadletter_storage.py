"""Where delivery counts and the dead-letter fallback live, per broker: Redis whenever the deployment has one.

On RabbitMQ the counts must still be shared by every worker host (the poison cap counts deliveries
across workers), so they go to REDIS_URL's Redis, not to one host's var/ files.
"""

from __future__ import annotations

import pytest

from backend.deadletters import storage


@pytest.mark.parametrize(
    ("broker", "redis_url", "expected"),
    [
        ("redis://broker:6379/0", "redis://state:6379/4", "redis://broker:6379/0"),
        ("amqp://guest:guest@rabbit:5672/fh", "redis://state:6379/4", "redis://state:6379/4"),
        ("pyamqp://rabbit//", "rediss://state:6380/2", "rediss://state:6380/2"),
        ("amqp://rabbit//", "", ""),
        ("filesystem://localhost/", "", ""),
    ],
)
def test_the_redis_of_dead_letter_state(settings, broker: str, redis_url: str, expected: str) -> None:
    settings.CELERY_BROKER_URL = broker
    settings.REDIS_URL = redis_url
    assert storage.redis_url() == expected
    assert storage.uses_redis() is bool(expected)


def test_the_client_follows_a_changed_url(settings) -> None:
    settings.CELERY_BROKER_URL = "amqp://rabbit//"
    settings.REDIS_URL = "redis://state-a:6379/1"
    first = storage.redis_client()
    settings.REDIS_URL = "redis://state-b:6379/1"
    second = storage.redis_client()
    assert first is not second
    assert second.connection_pool.connection_kwargs["host"] == "state-b"
