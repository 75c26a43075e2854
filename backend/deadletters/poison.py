"""The poison cap: a message whose worker died under it too many times is dead-lettered, not run.

``ReliableTask`` enters ``delivery_guard`` around every run. Deliveries of each message are counted
(in Redis when the deployment has one, else one small file per message next to the fallback file); a
message delivered more than ``DEADLETTER_MAX_DELIVERIES`` times fails with ``PoisonMessageError``
instead of running, which acknowledges it and dead-letters it.

In Redis a delivery costs one round trip: the count of a message whose body returned is not deleted
at once but in the pipeline that counts this process's next delivery (or when the process exits).
Until then it only lingers under its one-day expiry; this process already treats it as cleared.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import signals
from django.conf import settings

from . import storage

logger = logging.getLogger(__name__)

DELIVERY_REDIS_PREFIX = "financehub:deliveries:"
DELIVERY_COUNTER_TTL = 24 * 3600
# Redis keys of counts cleared by this process but not deleted yet (see the module docstring). Bounded:
# while Redis is away the oldest are let go and expire by themselves.
_cleared: list[str] = []
_CLEARED_MAX = 1000


class PoisonMessageError(Exception):
    """The message was delivered more times than the cap allows: its worker died on it each time."""


def _delivery_dir() -> Path:
    return storage.fallback_file().parent / "deliveries"


def _delivery_key(task_id: str, retries: int) -> str:
    # A retry is a new message under the same task id, so the count is per (id, retry number).
    return f"{task_id}:{retries}"


def _delivery_path(key: str) -> Path:
    return _delivery_dir() / hashlib.sha256(key.encode()).hexdigest()[:32]


# KEYS[1] = this delivery's counter, KEYS[2..] = counters cleared since; ARGV[1] = expiry in seconds.
# One command: atomic (a counter never lacks its expiry) and one round trip.
_COUNT_SCRIPT = """
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""
_scripts: dict[int, Any] = {}


def count_delivery(task_id: str, retries: int) -> int:
    """Count one more delivery of this message and return the total."""
    key = _delivery_key(task_id, retries)
    if storage.uses_redis():
        client = storage.redis_client()
        script = _scripts.get(id(client))
        if script is None:
            _scripts.clear()
            script = _scripts[id(client)] = client.register_script(_COUNT_SCRIPT)
        # Deleted first: a cleared count of this very message starts again from one, as before.
        count = script(keys=[DELIVERY_REDIS_PREFIX + key, *_cleared], args=[DELIVERY_COUNTER_TTL])
        _cleared.clear()
        return int(count)
    path = _delivery_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One byte appended per delivery: O_APPEND writes are atomic, the size is the count.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def current_deliveries(task_id: str, retries: int) -> int:
    """Deliveries counted so far for this message (0 when unknown or cleared)."""
    key = _delivery_key(task_id, retries)
    try:
        if storage.uses_redis():
            if DELIVERY_REDIS_PREFIX + key in _cleared:
                return 0
            return int(storage.redis_client().get(DELIVERY_REDIS_PREFIX + key) or 0)
        path = _delivery_path(key)
        return path.stat().st_size if path.exists() else 0
    except Exception:  # noqa: BLE001 - an unknown count is reported as 0, never an error
        return 0


def clear_deliveries(task_id: str, retries: int) -> None:
    """Forget the count: the body returned or raised, so the worker did not die on this message."""
    key = _delivery_key(task_id, retries)
    if storage.uses_redis():
        storage.redis_client().delete(DELIVERY_REDIS_PREFIX + key)
    else:
        _delivery_path(key).unlink(missing_ok=True)


def _clear_later(task_id: str, retries: int) -> None:
    """Clear the count with this process's next delivery (Redis) or now (files)."""
    if not storage.uses_redis():
        clear_deliveries(task_id, retries)
        return
    _cleared.append(DELIVERY_REDIS_PREFIX + _delivery_key(task_id, retries))
    del _cleared[:-_CLEARED_MAX]


@signals.worker_process_shutdown.connect(dispatch_uid="financehub.deadletters.flush_cleared_deliveries")
def flush_cleared(**_: Any) -> None:
    """Delete the counts still waiting for a next delivery (a pool process is exiting)."""
    if not _cleared:
        return
    try:
        storage.redis_client().delete(*_cleared)
    except Exception:  # noqa: BLE001 - they expire within a day; shutdown must not fail over it
        logger.info("could not delete %d cleared delivery counts; they expire by themselves", len(_cleared))
    _cleared.clear()


def prune_delivery_counters(max_age: float = DELIVERY_COUNTER_TTL) -> None:
    """Drop file counters older than a day (Redis counters expire by themselves)."""
    folder = _delivery_dir()
    if not folder.is_dir():
        return
    cutoff = time.time() - max_age
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


@contextlib.contextmanager
def delivery_guard(task: Any) -> Iterator[None]:
    """Count this delivery; refuse to run a message delivered more than the cap allows.

    ``PoisonMessageError`` is raised outside the task body, so autoretry never sees it: the task
    fails, its message is acknowledged and the failure handler writes the dead letter.
    """
    request = task.request
    cap = int(getattr(settings, "DEADLETTER_MAX_DELIVERIES", 3))
    if cap <= 0 or getattr(request, "is_eager", False) or getattr(request, "called_directly", True) or not request.id:
        yield
        return
    retries = int(request.retries or 0)
    try:
        count = count_delivery(request.id, retries)
    except Exception:  # noqa: BLE001 - a counter outage must not stop the work: run uncounted
        logger.warning("delivery counter unavailable for %s[%s]; running uncapped", task.name, request.id)
        count = 0
    if count > cap:
        raise PoisonMessageError(
            f"message delivered {count} times (cap {cap}): its worker died on each of the earlier "
            "deliveries; dead-lettered without running"
        )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            _clear_later(request.id, retries)
