"""Which workers consume which queue, published by the workers themselves (no broadcast per question).

Every worker's consumer writes ``{hostname: unix time}`` into one cache entry per queue it consumes
(Redis when configured) every ``WORKER_LIVENESS_SECONDS``, and removes itself on a warm shutdown.
A reader (``/health/ready``, /metrics, the notifier) counts an entry as live while it is younger
than three intervals, so a killed worker drops out within half a minute by default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from celery import bootsteps
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "financehub:workers:"
MISSED_INTERVALS = 3
# Cache errors a tick may meet: an unreachable Redis or database must not stop the consumer.
CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, DatabaseError, OSError)


def _key(queue: str) -> str:
    return f"{KEY_PREFIX}{queue}"


def max_age() -> float:
    """Seconds after which a worker's entry no longer counts."""
    return MISSED_INTERVALS * settings.WORKER_LIVENESS_SECONDS


def publish(hostname: str, queues: Iterable[str], *, now: float | None = None, present: bool = True) -> None:
    """Record (or, with ``present=False``, withdraw) ``hostname`` as a consumer of ``queues``."""
    now = time.time() if now is None else now
    queues = list(queues)
    entries = cache.get_many([_key(q) for q in queues])
    updated = {}
    for queue in queues:
        workers = {h: t for h, t in (entries.get(_key(queue)) or {}).items() if now - t <= max_age() * 10}
        if present:
            workers[hostname] = now
        else:
            workers.pop(hostname, None)
        updated[_key(queue)] = workers
    cache.set_many(updated, timeout=None)


def live_workers(queues: Iterable[str] | None = None, *, now: float | None = None) -> dict[str, list[str]]:
    """Hostnames that published for each queue within ``max_age()`` (one cache round trip)."""
    now = time.time() if now is None else now
    queues = list(queues if queues is not None else settings.TASK_QUEUES)
    entries: Mapping[str, Any] = cache.get_many([_key(q) for q in queues])
    limit = max_age()
    return {
        queue: sorted(h for h, t in (entries.get(_key(queue)) or {}).items() if now - t <= limit) for queue in queues
    }


class LivenessStep(bootsteps.StartStopStep):
    """Consumer bootstep: publish this worker's queues on the consumer's own timer.

    On the consumer's timer, not a thread: if the consumer's loop hangs, the worker stops
    publishing and readers see it gone.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref = None
        self.queues: list[str] = []

    def start(self, consumer: Any) -> None:
        """Publish now and then every interval."""
        self.queues = sorted(q.name for q in consumer.task_consumer.queues)
        self._tick(consumer.hostname)
        self.tref = consumer.timer.call_repeatedly(settings.WORKER_LIVENESS_SECONDS, self._tick, (consumer.hostname,))

    def stop(self, consumer: Any) -> None:
        """Withdraw on a warm shutdown, so readers need not wait for the entry to age out."""
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        try:
            publish(consumer.hostname, self.queues, present=False)
        except CACHE_ERRORS as exc:
            logger.warning("could not withdraw worker liveness: %s", type(exc).__name__)

    def _tick(self, hostname: str) -> None:
        from .telemetry import multiproc

        try:
            publish(hostname, self.queues)
        except CACHE_ERRORS as exc:
            logger.warning("could not publish worker liveness: %s", type(exc).__name__)
        multiproc.remove_dead_files(live_gauges_only=True)
