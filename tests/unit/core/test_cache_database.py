"""Django's cache has a Redis database of its own: clearing it leaves the broker and the provider state alone.

``cache.clear()`` is a FLUSHDB. On the broker's database it dropped queued and unacknowledged tasks,
every quota, breaker and pause (issue 20, item 4). These run against the real Redis of the settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from backend.core.celery import app
from backend.core.environment import next_redis_database, redis_location
from backend.providers.breaker import CircuitBreaker, RedisBreakerStore
from backend.providers.errors import TransientProviderError
from backend.providers.pauses import PauseBoard, RedisPauseStore
from backend.providers.ratelimit import RateLimitedError, RateLimiter


@pytest.mark.parametrize(
    ("url", "cache_url"),
    [
        ("redis://:pw@redis:6379/0", "redis://:pw@redis:6379/1"),
        ("redis://127.0.0.1:6379/6", "redis://127.0.0.1:6379/7"),
        ("redis://localhost", "redis://localhost/1"),
        ("rediss://h:6380/3?ssl_cert_reqs=none", "rediss://h:6380/4?ssl_cert_reqs=none"),
        ("redis://h/0?db=2", "redis://h/0?db=3"),
    ],
)
def test_the_cache_takes_the_database_after_redis_urls(url: str, cache_url: str) -> None:
    assert next_redis_database("REDIS_URL", url) == cache_url
    assert redis_location(cache_url)[:2] == redis_location(url)[:2]  # same server, next database


def test_two_urls_of_one_database_have_one_location_whatever_their_password() -> None:
    assert redis_location("redis://:a@Redis:6379/0") == redis_location("redis://redis") == ("redis", "6379", 0)
    assert redis_location("redis://redis/1") != redis_location("redis://redis/0")
    assert redis_location("filesystem://") is None


@pytest.mark.redis
def test_the_settings_give_the_cache_its_own_database() -> None:
    cache_at = redis_location(settings.CACHES["default"]["LOCATION"])
    assert cache_at is not None
    assert cache_at != redis_location(settings.CELERY_BROKER_URL)
    assert cache_at != redis_location(settings.PROVIDER_STATE_REDIS_URL)


@pytest.fixture
def probe() -> Iterator[str]:
    """A name for a queue no worker consumes and a provider no chain calls; their keys removed after."""
    name = f"cache-probe-{uuid.uuid4().hex[:8]}"
    yield name
    with redis.Redis.from_url(settings.PROVIDER_STATE_REDIS_URL) as state:
        for key in state.scan_iter(match=f"*{name}*"):
            state.delete(key)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.mark.redis
def test_clearing_the_cache_keeps_queued_and_unacked_tasks_quotas_breakers_and_pauses(probe: str) -> None:
    state_url, prefix = settings.PROVIDER_STATE_REDIS_URL, settings.PROVIDER_STATE_PREFIX
    breaker = CircuitBreaker(RedisBreakerStore(state_url, prefix=prefix), failure_threshold=2, reset_seconds=600)
    pauses = PauseBoard(RedisPauseStore(state_url, prefix=prefix))
    limiter = RateLimiter(state_url, {probe: "2/hour"}, namespace=prefix)

    def provider_down() -> None:
        raise TransientProviderError("HTTP 503", provider=probe)

    with app.connection_for_write() as conn, redis.Redis.from_url(settings.CELERY_BROKER_URL) as broker:
        queue = conn.SimpleQueue(probe)
        queue.put({"n": 1})
        queue.put({"n": 2})
        held = queue.get(timeout=5)  # taken, not acknowledged: it sits in the broker's unacked set
        assert broker.hexists("unacked", held.delivery_tag)
        for _ in range(2):
            with pytest.raises(TransientProviderError):
                breaker.call(probe, provider_down)
        pauses.pause(probe, 3600, reason="daily quota")
        limiter.acquire(probe, timeout=0, cost=2)  # the whole hourly quota
        cache.set("cache-probe", "set", timeout=None)

        cache.clear()

        assert cache.get("cache-probe") is None  # the cache itself was emptied
        assert queue.qsize() == 1, "a queued task was lost"
        assert broker.hexists("unacked", held.delivery_tag), "an unacknowledged task was lost"
        assert breaker.state(probe).state == "open"
        assert pauses.remaining(probe) > 3500
        with pytest.raises(RateLimitedError):
            limiter.acquire(probe, timeout=0)  # the spent quota is still spent
        held.ack()
        assert queue.get(timeout=5).payload == {"n": 2}
        queue.close()
