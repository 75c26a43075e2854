"""Where dead-letter state lives outside the database: Redis when it is the broker, else var/ files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

_redis_clients: dict[int, Any] = {}


def uses_redis() -> bool:
    """Whether Redis is the broker (then it also holds the fallback list and delivery counters)."""
    return str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://"))


def redis_client() -> Any:
    """A Redis client for this process (never shared across a fork), with short timeouts."""
    import redis

    pid = os.getpid()
    if pid not in _redis_clients:
        _redis_clients.clear()
        _redis_clients[pid] = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=3, socket_connect_timeout=3
        )
    return _redis_clients[pid]


def fallback_file() -> Path:
    """The JSON-lines fallback file (``DEADLETTER_FALLBACK_FILE``); its folder holds the other files."""
    return Path(settings.DEADLETTER_FALLBACK_FILE)
