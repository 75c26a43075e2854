"""Fault rehearsal: the simulated provider fails on purpose for a while, in every worker at once.

An operator trying the demo stack wants to see what a provider outage looks like (a retry, a dead
letter, Replay and Discard) without a real provider to break. ``rehearse_faults`` stores a fault
rate and an end time in the cache every process shares (Redis, or the database cache table of the
embedded defaults); each simulated provider call reads it (``fault_rate``) and fails that share of
calls as a transient fault. The entry expires by itself when the rehearsal ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import DatabaseError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

CACHE_KEY = "financehub:rehearsal:faults"
MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class FaultRehearsal:
    """A running rehearsal: the share of simulated provider calls that fail, and until when."""

    rate: float
    until: datetime

    def describe(self) -> str:
        """One line for operators: what fails and until when."""
        return f"the simulated provider fails {self.rate:.0%} of calls until {self.until:%Y-%m-%d %H:%M:%S} UTC"


def start(rate: float, minutes: float, *, now: datetime | None = None) -> FaultRehearsal:
    """Make ``rate`` (0 < rate <= 1) of simulated provider calls fail for ``minutes``, in every worker."""
    if not 0 < rate <= 1:
        raise ValueError(f"the fault rate must be above 0 and at most 1, not {rate}")
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"a rehearsal lasts more than 0 and at most {MAX_MINUTES} minutes, not {minutes}")
    until = (now or datetime.now(tz=UTC)) + timedelta(minutes=minutes)
    cache.set(CACHE_KEY, {"rate": rate, "until": until.isoformat()}, timeout=minutes * 60)
    rehearsal = FaultRehearsal(rate, until)
    logger.warning("fault rehearsal started: %s", rehearsal.describe())
    return rehearsal


def stop() -> bool:
    """End the rehearsal now; whether one was running."""
    was_running = current() is not None
    cache.delete(CACHE_KEY)
    if was_running:
        logger.warning("fault rehearsal stopped by hand")
    return was_running


def current(*, now: datetime | None = None) -> FaultRehearsal | None:
    """The running rehearsal, if any (an entry past its end counts as none)."""
    entry = cache.get(CACHE_KEY)
    if not isinstance(entry, dict):
        return None
    rehearsal = FaultRehearsal(float(entry["rate"]), datetime.fromisoformat(entry["until"]))
    return rehearsal if rehearsal.until > (now or datetime.now(tz=UTC)) else None


def fault_rate() -> float:
    """The share of simulated provider calls to fail now: 0.0 without a rehearsal.

    Asked before every simulated call. A cache that cannot be read means no rehearsal rather than a
    failed fetch: the rehearsal is a demo aid and must never break the real (simulated) work.
    """
    try:
        rehearsal = current()
    except (RedisError, DatabaseError) as exc:
        logger.info("fault rehearsal state unreadable (%s): no faults", type(exc).__name__)
        return 0.0
    return rehearsal.rate if rehearsal else 0.0
