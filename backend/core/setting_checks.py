"""Start-up checks across settings: values that are each valid but contradict one another."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .environment import redis_location
from .secret_checks import check_secrets


def check_settings(values: Mapping[str, Any]) -> None:
    """Refuse to start, naming the setting, when values contradict each other (limits, timeouts, modes)."""
    CELERY_TASK_SOFT_TIME_LIMIT = values["CELERY_TASK_SOFT_TIME_LIMIT"]
    CELERY_TASK_TIME_LIMIT = values["CELERY_TASK_TIME_LIMIT"]
    CELERY_VISIBILITY_TIMEOUT = values["CELERY_VISIBILITY_TIMEOUT"]
    DISPATCH_LOCK_TTL = values["DISPATCH_LOCK_TTL"]
    MARKET_DATA_MODE = values["MARKET_DATA_MODE"]
    PROVIDER_HTTP_TIMEOUT = values["PROVIDER_HTTP_TIMEOUT"]
    PROVIDER_RATE_LIMIT_MAX_WAIT = values["PROVIDER_RATE_LIMIT_MAX_WAIT"]
    TASK_RETRY_BACKOFF_MAX = values["TASK_RETRY_BACKOFF_MAX"]
    TASK_RETRY_DELAY_FLOOR = values["TASK_RETRY_DELAY_FLOOR"]
    VISIBILITY_MARGIN_SECONDS = values["VISIBILITY_MARGIN_SECONDS"]
    if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT}) must be below "
            f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})"
        )
    # A retry waits its countdown in the worker, unacknowledged, then runs up to the hard limit.
    longest_hold = CELERY_TASK_TIME_LIMIT + TASK_RETRY_BACKOFF_MAX + VISIBILITY_MARGIN_SECONDS
    if longest_hold >= CELERY_VISIBILITY_TIMEOUT:
        raise ImproperlyConfigured(
            f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}) must exceed CELERY_TASK_TIME_LIMIT "
            f"+ TASK_RETRY_BACKOFF_MAX + {VISIBILITY_MARGIN_SECONDS} s ({CELERY_TASK_TIME_LIMIT} + "
            f"{TASK_RETRY_BACKOFF_MAX} + {VISIBILITY_MARGIN_SECONDS}): a held retry would be delivered twice"
        )
    check_consumer_timeout(values)
    if not 0 < TASK_RETRY_DELAY_FLOOR <= TASK_RETRY_BACKOFF_MAX:
        raise ImproperlyConfigured("TASK_RETRY_DELAY_FLOOR must be positive and at most TASK_RETRY_BACKOFF_MAX")
    if PROVIDER_HTTP_TIMEOUT + PROVIDER_RATE_LIMIT_MAX_WAIT >= CELERY_TASK_SOFT_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"PROVIDER_HTTP_TIMEOUT + PROVIDER_RATE_LIMIT_MAX_WAIT ({PROVIDER_HTTP_TIMEOUT} + "
            f"{PROVIDER_RATE_LIMIT_MAX_WAIT}) must stay below "
            f"CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT})"
        )
    if DISPATCH_LOCK_TTL < CELERY_TASK_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"DISPATCH_LOCK_TTL ({DISPATCH_LOCK_TTL}) must be at least "
            f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})"
        )
    if "CELERY_RESULT_EXPIRES" in os.environ:
        raise ImproperlyConfigured(
            "CELERY_RESULT_EXPIRES is no longer read: maintenance.cleanup deletes task results after "
            "RETENTION_TASK_RESULTS_DAYS days; set that instead and remove CELERY_RESULT_EXPIRES"
        )
    if MARKET_DATA_MODE not in {"simulated", "fake", "live"}:
        raise ImproperlyConfigured(f"MARKET_DATA_MODE: expected simulated, fake or live, got {MARKET_DATA_MODE!r}")
    if values["LOG_FORMAT"] not in values["LOGGING"]["formatters"]:
        raise ImproperlyConfigured(f"LOG_FORMAT: expected plain or json, got {values['LOG_FORMAT']!r}")
    check_cache_apart(values)
    check_secrets(values)


def check_consumer_timeout(values: Mapping[str, Any]) -> None:
    """On RabbitMQ, refuse settings that could hold a delivery unacknowledged up to its consumer_timeout.

    A worker holds a retry's message through its countdown (at most TASK_RETRY_BACKOFF_MAX: a longer
    wait hops), then it may wait for a busy pool process (up to one hard limit) and run (another).
    Past consumer_timeout the broker closes the channel and redelivers all it held: duplicates.
    """
    if not values.get("USES_AMQP_BROKER"):
        return
    timeout = values["RABBITMQ_CONSUMER_TIMEOUT"]
    hard, countdown, margin = (
        values["CELERY_TASK_TIME_LIMIT"],
        values["TASK_RETRY_BACKOFF_MAX"],
        values["VISIBILITY_MARGIN_SECONDS"],
    )
    longest_hold = countdown + 2 * hard + margin
    # "Well under": half the timeout, so a slow broker clock or a long GC pause is no duplicate either.
    if 2 * longest_hold > timeout:
        raise ImproperlyConfigured(
            f"RABBITMQ_CONSUMER_TIMEOUT ({timeout}) must be at least twice TASK_RETRY_BACKOFF_MAX + "
            f"2 x CELERY_TASK_TIME_LIMIT + {margin} s ({countdown} + 2 x {hard} + {margin} = {longest_hold}): "
            "RabbitMQ closes the channel of a worker holding a message longer and delivers it twice"
        )


def check_cache_apart(values: Mapping[str, Any]) -> None:
    """Refuse a cache in the Redis database of the broker or of the provider state: clearing the cache
    (a FLUSHDB) would drop queued tasks, or every quota, breaker and pause."""
    cache = redis_location(values.get("CACHE_REDIS_URL") or "")
    if cache is None:
        return
    for name in ("CELERY_BROKER_URL", "PROVIDER_STATE_REDIS_URL"):
        if redis_location(values.get(name) or "") == cache:
            server, where, database = cache
            raise ImproperlyConfigured(
                f"CACHE_REDIS_URL: the cache shares Redis database {database} on {server}:{where} with {name}; "
                "cache.clear() would empty it. Give the cache a database of its own (unset CACHE_REDIS_URL: "
                "the database after REDIS_URL's)"
            )
