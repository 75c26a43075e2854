"""Where dead-letter state lives outside the database: Redis when the deployment has one, else var/ files.

Redis is the broker's when it is the broker; on RabbitMQ it is ``REDIS_URL``'s (the store of quotas,
breakers, pauses and liveness too), so delivery counts and parked records are shared by every worker
host. Only a deployment without Redis (the embedded filesystem broker) keeps them in local files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

_REDIS_SCHEMES = ("redis://", "rediss://")
_redis_clients: dict[tuple[int, str], Any] = {}


def redis_url() -> str:
    """The Redis holding the fallback list and delivery counters: the broker's, else REDIS_URL; '' for none."""
    broker = str(settings.CELERY_BROKER_URL)
    if broker.startswith(_REDIS_SCHEMES):
        return broker
    state = str(getattr(settings, "REDIS_URL", "") or "")
    return state if state.startswith(_REDIS_SCHEMES) else ""


def uses_redis() -> bool:
    """Whether a Redis holds the fallback list and delivery counters (else files under var/)."""
    return bool(redis_url())


def redis_client() -> Any:
    """A Redis client for this process (never shared across a fork), with short timeouts."""
    import redis

    key = (os.getpid(), redis_url())
    if key not in _redis_clients:
        _redis_clients.clear()
        _redis_clients[key] = redis.Redis.from_url(key[1], socket_timeout=3, socket_connect_timeout=3)
    return _redis_clients[key]


def fallback_file() -> Path:
    """The JSON-lines fallback file (``DEADLETTER_FALLBACK_FILE``); its folder holds the other files."""
    return Path(settings.DEADLETTER_FALLBACK_FILE)
