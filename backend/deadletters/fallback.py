"""The fallback: dead letters the database refused wait in Redis or a local file until it is back.

Celery swallows exceptions raised by signal receivers, so a write the database refuses goes here
instead of vanishing — a Redis list when the deployment has Redis, an append-only JSON-lines file
otherwise — and ``flush_fallback`` moves it into the table later. A record leaves the fallback only
after the database took it, or after it was parked (``parking``) because the database never will.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import DatabaseError

from . import parking, poison, rows, storage
from .records import FailureRecord

logger = logging.getLogger(__name__)

FALLBACK_REDIS_KEY = "financehub:deadletters:fallback"
FLUSH_BATCH = 500


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    """The file opened for append and read, held under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_fallback(record: FailureRecord) -> str:
    """Keep ``record`` outside the database; returns where it went. Redis first when there is one."""
    line = record.to_json()
    if storage.uses_redis():
        try:
            storage.redis_client().rpush(FALLBACK_REDIS_KEY, line)
            return f"redis list {FALLBACK_REDIS_KEY}"
        except Exception:  # noqa: BLE001 - Redis down too: the local file is the last resort
            logger.warning("dead letter fallback: Redis refused the record, using the local file", exc_info=True)
    path = storage.fallback_file()
    with _locked(path) as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return str(path)


def pending_fallback() -> int:
    """How many records wait in the fallback (Redis list and file)."""
    count = 0
    if storage.uses_redis():
        with contextlib.suppress(Exception):
            count += int(storage.redis_client().llen(FALLBACK_REDIS_KEY))
    path = storage.fallback_file()
    if path.exists() and path.stat().st_size:
        with _locked(path) as handle:
            handle.seek(0)
            count += sum(1 for line in handle if line.strip())
    return count


@dataclass
class FlushResult:
    """What one flush did: records stored, still waiting (database away), and parked for good."""

    flushed: int = 0
    remaining: int = 0
    parked: int = 0


def flush_fallback(*, dry_run: bool = False) -> FlushResult:
    """Move fallback records into the table; idempotent and safe to run from several processes.

    A record leaves the fallback only after the database took it (or refused its content, which
    parks it), so a crash or an outage in the middle leaves the rest for the next flush. Called at
    the start of every dead-letter write, by the periodic heartbeat and by ``manage.py deadletters flush``.
    """
    result = FlushResult()
    if storage.uses_redis():
        _flush_redis(result, dry_run)
    _flush_file(result, dry_run)
    if not dry_run:
        poison.prune_delivery_counters()
    if result.flushed or result.parked:
        logger.info(
            "dead letter fallback: flushed %d records, parked %d, %d remain",
            result.flushed,
            result.parked,
            result.remaining,
        )
    return result


def _store(raw: str | bytes, result: FlushResult) -> bool:
    """Store one fallback line (or park it); False when the database is away and flushing must stop."""
    try:
        record = FailureRecord.from_json(raw)
    except (ValueError, TypeError) as exc:
        parking.park(raw, f"unreadable: {type(exc).__name__}")
        result.parked += 1
        return True
    try:
        rows.apply_record(record)
    except rows.UnstorableRecord as exc:
        parking.park(raw, f"refused by the database: {exc}")
        result.parked += 1
        return True
    except DatabaseError:  # the database is still away (or not migrated yet): keep this and the rest
        return False
    except Exception as exc:  # noqa: BLE001 - a record that breaks the merge itself must not block the rest
        parking.park(raw, f"could not be merged: {type(exc).__name__}: {exc}")
        result.parked += 1
        return True
    result.flushed += 1
    return True


def _flush_redis(result: FlushResult, dry_run: bool) -> None:
    client = storage.redis_client()
    items = client.lrange(FALLBACK_REDIS_KEY, 0, FLUSH_BATCH - 1)
    if dry_run:
        result.flushed += len(items)
        result.remaining += int(client.llen(FALLBACK_REDIS_KEY)) - len(items)
        return
    for raw in items:
        if not _store(raw, result):
            break
        # LREM of the exact value, not LPOP: another flusher may already have taken the head.
        client.lrem(FALLBACK_REDIS_KEY, 1, raw)
    result.remaining += int(client.llen(FALLBACK_REDIS_KEY))


def _flush_file(result: FlushResult, dry_run: bool) -> None:
    path = storage.fallback_file()
    if not path.exists() or not path.stat().st_size:
        return
    with _locked(path) as handle:
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        if dry_run:
            result.flushed += len(lines)
            return
        kept: list[str] = []
        for position, line in enumerate(lines):
            if not _store(line, result):
                kept = lines[position:]
                break
        result.remaining += len(kept)
        # Rewrite in place under the lock; writers wait on the same lock, so nothing is lost.
        handle.seek(0)
        handle.truncate()
        handle.writelines(line + "\n" for line in kept)
        handle.flush()
        os.fsync(handle.fileno())


def record_failure(record: FailureRecord) -> str:
    """Store ``record``: in the table when the database answers, else in the fallback. Never raises.

    Returns where it went: ``database``, ``fallback``, ``parked`` (the database refused its content)
    or ``log`` (nothing else took it).
    """
    try:
        if pending_fallback():
            flush_fallback()
    except Exception:  # noqa: BLE001 - flushing is best effort here; the heartbeat flushes again
        logger.debug("dead letter fallback: flush before write failed", exc_info=True)
    try:
        rows.apply_record(record)
        logger.info("dead letter recorded for %s[%s]: %s", record.task_name, record.task_id, record.exception_class)
        return "database"
    except rows.UnstorableRecord as exc:
        # Waiting cannot help: park it where the operator sees it instead of a fallback it never leaves.
        parking.park(record.to_json(), f"refused by the database: {exc}")
        return "parked"
    except Exception as exc:  # noqa: BLE001 - Celery would swallow it and the dead letter would be lost
        database_error = f"{type(exc).__name__}: {exc}"
    try:
        where = write_fallback(record)
    except Exception:  # noqa: BLE001 - last resort: the (redacted) record goes to the log
        logger.critical("dead letter could not be stored anywhere; record follows: %s", record.to_json())
        return "log"
    logger.warning(
        "dead letter for %s[%s] written to fallback %s (database: %s)",
        record.task_name,
        record.task_id,
        where,
        database_error,
    )
    return "fallback"
