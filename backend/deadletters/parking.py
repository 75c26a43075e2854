"""Parked fallback records: ones the database will never take as they are, set aside where an
operator sees them (a count in admin and ``/metrics``, ``manage.py deadletters parked``).

A record lands here when it cannot be read (a line torn by a crashed writer) or the database
refuses its content even after escaping (see ``rows``). Parking takes it out of the fallback, so
``flush`` never reports the same stuck records again and again.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from django.utils import timezone

from . import storage

logger = logging.getLogger(__name__)

PARKED_REDIS_KEY = "financehub:deadletters:parked"


def parked_file() -> Path:
    """The JSON-lines file parked records go to when Redis is not the broker (or refuses)."""
    path = storage.fallback_file()
    return path.with_name(path.name + ".parked")


def park(raw: str | bytes, reason: str) -> None:
    """Set one fallback record aside with the reason it cannot be stored."""
    text = raw.decode("utf-8", errors="backslashreplace") if isinstance(raw, bytes) else raw
    entry = json.dumps({"parked_at": timezone.now().isoformat(), "reason": reason[:500], "record": text})
    logger.error("dead letter fallback: record parked (%s)", reason[:200])
    if storage.uses_redis():
        try:
            storage.redis_client().rpush(PARKED_REDIS_KEY, entry)
            return
        except Exception:  # noqa: BLE001 - Redis refused: the local file keeps it instead
            logger.warning("dead letter fallback: Redis refused a parked record, using the local file", exc_info=True)
    path = parked_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(entry + "\n")


def parked_records(limit: int = 100) -> list[dict[str, Any]]:
    """The parked records (Redis first, then the file), oldest first, at most ``limit``."""
    raw: list[Any] = []
    if storage.uses_redis():
        with contextlib.suppress(Exception):
            raw.extend(storage.redis_client().lrange(PARKED_REDIS_KEY, 0, limit - 1))
    path = parked_file()
    if len(raw) < limit and path.exists():
        raw.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    entries = []
    for item in raw[:limit]:
        try:
            entries.append(json.loads(item))
        except ValueError:
            entries.append({"parked_at": "", "reason": "unreadable parked entry", "record": str(item)})
    return entries


def parked_count() -> int:
    """How many records are parked."""
    count = 0
    if storage.uses_redis():
        with contextlib.suppress(Exception):
            count += int(storage.redis_client().llen(PARKED_REDIS_KEY))
    path = parked_file()
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            count += sum(1 for line in handle if line.strip())
    return count


def clear_parked() -> int:
    """Forget every parked record (after an operator read them); how many there were."""
    count = parked_count()
    if storage.uses_redis():
        with contextlib.suppress(Exception):
            storage.redis_client().delete(PARKED_REDIS_KEY)
    parked_file().unlink(missing_ok=True)
    return count
