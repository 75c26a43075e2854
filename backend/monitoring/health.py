"""Readiness checks: can the platform do its job right now? Each check is small and bounded in time."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from backend.core.celery import app
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.liveness import CACHE_ERRORS, live_workers
from backend.tasks.models import Heartbeat

# Beat's heartbeat runs every minute; three missed beats mean beat (or every worker) is gone.
BEAT_MAX_AGE_SECONDS = 180
# /health/data's report, kept in the shared cache for HEALTH_DATA_CACHE_SECONDS.
FRESHNESS_CACHE_KEY = "health:freshness"
# The threads of one process wait for the one computation in progress instead of each starting theirs.
_freshness_lock = threading.Lock()


@dataclass(frozen=True)
class Check:
    """One named check: whether it passed and a short, secret-free detail."""

    name: str
    ok: bool
    detail: object

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def check_database() -> Check:
    """The database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, connection.vendor)
    except DatabaseError as exc:
        return Check("database", False, type(exc).__name__)


def check_broker() -> Check:
    """The broker accepts a connection within a second."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return Check("broker", True, conn.transport_cls)
    except (BrokerError, OSError) as exc:
        return Check("broker", False, type(exc).__name__)


def check_workers() -> Check:
    """At least one live worker consumes each declared queue, by the entries the workers publish."""
    try:
        served = live_workers(settings.TASK_QUEUES)
    except CACHE_ERRORS as exc:
        return Check("workers", False, type(exc).__name__)
    missing = [name for name, hosts in served.items() if not hosts]
    workers = {host for hosts in served.values() for host in hosts}
    return Check("workers", not missing, {"workers": len(workers), "queues_without_worker": missing})


def check_beat(now: datetime, max_age: float = BEAT_MAX_AGE_SECONDS) -> Check:
    """Beat's heartbeat task ran within ``max_age`` seconds (it also proves a worker serves the high queue)."""
    beat = Heartbeat.objects.filter(component="beat").first()
    if beat is None:
        return Check("beat", False, "no heartbeat recorded yet")
    age = (now - beat.last_seen).total_seconds()
    return Check("beat", age <= max_age, {"age_seconds": round(age, 1)})


def check_freshness(now: datetime | None = None) -> Check:
    """Every active asset meets its freshness target; the detail names the stale ones per class."""
    report = current_freshness(now)
    return Check("freshness", report.stale == 0, report.as_dict())


def cached_freshness() -> Check:
    """``check_freshness()``, computed at most once per ``HEALTH_DATA_CACHE_SECONDS`` by the web processes
    sharing the cache: a storm of polls costs one computation (at worst one per process when the
    report expires), whatever the size of the universe. Without a reachable cache, each call computes."""
    seconds = settings.HEALTH_DATA_CACHE_SECONDS
    if seconds <= 0:
        return check_freshness()
    with _freshness_lock:
        try:
            cached = cache.get(FRESHNESS_CACHE_KEY)
        except CACHE_ERRORS:
            cached = None
        if cached is not None:
            ok, detail = cached
            return Check("freshness", ok, detail)
        check = check_freshness()
        try:
            cache.set(FRESHNESS_CACHE_KEY, (check.ok, check.detail), timeout=seconds)
        except CACHE_ERRORS:
            pass  # answered all the same; the next poll computes again
        return check


def readiness() -> tuple[bool, list[Check]]:
    """Platform liveness only (database, broker, a worker per queue, beat): what a load balancer needs.

    Data freshness is not part of it: a provider outage makes data stale, not the web process
    unable to serve; that is /health/data's answer.
    """
    now = timezone.now()
    checks = [check_database(), check_broker(), check_workers(), check_beat(now)]
    return all(c.ok for c in checks), checks
