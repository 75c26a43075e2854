"""What a scenario sees of the system: rows in the private database and lines in the worker logs.

Models are looked up by name in the app registry, not imported, so the suite keeps working while
bookkeeping models move between apps (DispatchRun and Heartbeat are moving to the tasks app).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.apps import apps
from django.db import connections
from django.db.models import Count
from django.db.utils import InterfaceError, OperationalError

from .accounting import DeadLetterSeen, RunCount, batch_items
from .stack import DB_ALIAS, Stack

RECEIVED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] received")
RETRIED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] retry: Retry in ([0-9.]+)s")
DEFERRED = re.compile(r"([\w.]+)\[([0-9a-f-]{36})\] asked no provider for .*: deferred ")
BUSY_CHILD_LOST = re.compile(r"WorkerLostError\('Worker exited prematurely: signal 9 \(SIGKILL\)")

# App labels whose tables a scenario starts without.
CLEAN_APPS = ("market", "monitoring", "tasks", "deadletters", "django_celery_results", "django_celery_beat")


def model(name: str):
    """The model class called ``name``, wherever it lives."""
    found = [m for m in apps.get_models() if m.__name__ == name]
    if len(found) != 1:
        raise LookupError(f"expected one model named {name}, found {[m._meta.label for m in found]}")
    return found[0]


def db_down_safe(read: Callable[[], object], default: object = None) -> object:
    """Run a read; while the database is down, close the broken connection and return ``default``."""
    try:
        return read()
    except (OperationalError, InterfaceError):
        connections[DB_ALIAS].close()
        return default


def reset_database() -> None:
    """Empty every table of the platform (the schema stays) so a scenario starts from nothing."""
    tables = [
        m._meta.db_table
        for m in apps.get_models(include_auto_created=True)
        if m._meta.app_label in CLEAN_APPS and m._meta.managed and not m._meta.proxy
    ]
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def seed_crypto(count: int, prefix: str = "C") -> list[str]:
    """Create ``count`` active crypto assets (bulk: no creation-time backfill); return their symbols."""
    asset_type_model = model("AssetType")
    asset_model = model("Asset")
    # bulk_create throughout: model signals would reach for the default database, not ours.
    asset_type_model.objects.using(DB_ALIAS).bulk_create(
        [asset_type_model(code="crypto", name="Crypto")], ignore_conflicts=True
    )
    crypto = asset_type_model.objects.using(DB_ALIAS).get(code="crypto")
    symbols = [f"{prefix}{i:04d}" for i in range(count)]
    asset_model.objects.using(DB_ALIAS).bulk_create(
        asset_model(
            symbol=s, name=s, asset_type=crypto, binance_symbol=f"{s}USDT", coingecko_id=s.lower(), is_active=True
        )
        for s in symbols
    )
    return symbols


def stored_since(symbols: Iterable[str], since: datetime) -> frozenset[str]:
    """Symbols whose quote was stored at or after ``since``."""
    quote = model("Quote")
    rows = quote.objects.using(DB_ALIAS).filter(asset__symbol__in=list(symbols), fetched_at__gte=since)
    return frozenset(rows.values_list("asset__symbol", flat=True))


def duplicated_rows() -> int:
    """Rows beyond one per natural key: bars per (asset, interval, time), quotes per asset."""
    bars = (
        model("PriceBar")
        .objects.using(DB_ALIAS)
        .values("asset", "interval", "timestamp")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    quotes = model("Quote").objects.using(DB_ALIAS).values("asset").annotate(n=Count("pk")).filter(n__gt=1)
    return sum(row["n"] - 1 for row in bars) + sum(row["n"] - 1 for row in quotes)


def dispatch_runs(schedule_prefix: str = ""):
    """Dispatch runs (skipped ones included), oldest first."""
    runs = model("DispatchRun").objects.using(DB_ALIAS).filter(schedule__startswith=schedule_prefix)
    return list(runs.order_by("started_at", "pk"))


def run_count(schedule_prefix: str = "") -> RunCount | None:
    """The one dispatched (not skipped) run of a scenario."""
    runs = [r for r in dispatch_runs(schedule_prefix) if r.status != "skipped"]
    if not runs:
        return None
    run = runs[-1]
    return RunCount(run.pk, run.planned, run.done, run.failed, run.status)


# Where a dead letter waits while the database is down (backend.deadletters' fallback): a
# Redis list on the broker, else a JSON-lines file under the var directory.
FALLBACK_REDIS_KEY = "financehub:deadletters:fallback"
FALLBACK_FILE = Path("deadletters") / "fallback.jsonl"


def dead_letters(stack: Stack | None = None) -> tuple[DeadLetterSeen, ...]:
    """Every dead letter with the items it holds, the parked ones (fallback) included, one per task id."""
    rows = model("DeadLetter").objects.using(DB_ALIAS).order_by("pk")
    found = {
        d.task_id: DeadLetterSeen(d.task_name, d.exception_class, batch_items(d.args, d.kwargs), d.retries)
        for d in rows
    }
    if stack is not None:
        parked = [raw.decode() for raw in stack.services.redis.client().lrange(FALLBACK_REDIS_KEY, 0, -1)]
        path = stack.var_dir / FALLBACK_FILE
        if path.exists():
            parked += [line for line in path.read_text().splitlines() if line.strip()]
        for line in parked:
            record = json.loads(line)
            seen = DeadLetterSeen(
                str(record.get("task_name")),
                str(record.get("exception_class")),
                batch_items(record.get("args"), record.get("kwargs")),
                int(record.get("retries") or 0),
                parked=True,
            )
            found.setdefault(record.get("task_id", line), seen)
    return tuple(found.values())


def dead_letter_rows():
    return list(model("DeadLetter").objects.using(DB_ALIAS).order_by("pk"))


@dataclass(frozen=True)
class LogFacts:
    """Deliveries and retries read from worker logs."""

    deliveries: dict[str, int]
    retries: int
    retry_delays: list[float]
    busy_children_lost: int
    deferrals: int = 0


def log_facts(text: str, task_name: str | None = None) -> LogFacts:
    """Count each task id's deliveries, the retries and the pool processes killed mid-task."""
    received = Counter(task_id for name, task_id in RECEIVED.findall(text) if task_name is None or name == task_name)
    retried = [float(delay) for name, _, delay in RETRIED.findall(text) if task_name is None or name == task_name]
    deferred = [task_id for name, task_id in DEFERRED.findall(text) if task_name is None or name == task_name]
    return LogFacts(dict(received), len(retried), retried, len(BUSY_CHILD_LOST.findall(text)), len(deferred))


def wait_recovered(condition: Callable[[], bool], since: float, bound: float, patience: float) -> float | None:
    """Seconds from ``since`` (monotonic) until ``condition`` holds, or None if it did not within ``patience``.

    ``patience`` exceeds ``bound`` so a slow recovery is measured (and reported) rather than cut off.
    """
    deadline = since + max(bound, patience)
    while time.monotonic() < deadline:
        if db_down_safe(condition, default=False):
            return time.monotonic() - since
        time.sleep(0.5)
    return None
