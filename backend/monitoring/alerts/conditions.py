"""What is wrong right now: each condition of the alert rules, as plain ``Alert`` records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from backend.deadletters.models import DeadLetter
from backend.market.freshness import FreshnessReport, StaleAsset
from backend.providers.breaker import OPEN
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.liveness import live_workers
from backend.tasks.models import Heartbeat

from .queue_wait import queue_wait_p95

# Beat's heartbeat runs every minute: three missed ones (as /health/ready judges it).
BEAT_SILENT_AFTER_SECONDS = 180
OPEN_LETTERS_KEY = "financehub:alerts:open-letters"


@dataclass(frozen=True)
class Alert:
    """One firing condition: a stable key (what repeats and resolves), a severity and one line for people."""

    key: str
    severity: str
    summary: str


def evaluate(now: datetime) -> list[Alert]:
    """Every condition that holds at ``now``, most severe first."""
    alerts = [
        *beat_silent(now),
        *queues_without_worker(),
        *stale_assets(current_freshness(now)),
        *dead_letters_rising(),
        *breakers_open(),
        *queue_wait_over_budget(),
    ]
    return sorted(alerts, key=lambda a: (a.severity != "critical", a.key))


def beat_silent(now: datetime) -> list[Alert]:
    """Beat's heartbeat is missing or older than three minutes."""
    beat = Heartbeat.objects.filter(component="beat").first()
    if beat is None:
        return [Alert("beat_silent", "critical", "beat has never sent a heartbeat")]
    age = (now - beat.last_seen).total_seconds()
    if age <= BEAT_SILENT_AFTER_SECONDS:
        return []
    return [Alert("beat_silent", "critical", f"beat's last heartbeat is {age:.0f} s old: no periodic task is sent")]


def queues_without_worker() -> list[Alert]:
    """Queues no live worker consumes."""
    return [
        Alert(f"no_worker:{queue}", "critical", f"no live worker consumes queue {queue}")
        for queue, hosts in live_workers(settings.TASK_QUEUES).items()
        if not hosts
    ]


def stale_assets(report: FreshnessReport) -> list[Alert]:
    """Enough assets past their freshness target; names the classes and the stalest assets."""
    if report.stale < max(1, settings.ALERT_STALE_ASSETS_MIN):
        return []
    classes = ", ".join(f"{c.asset_class} {c.stale}/{c.assets}" for c in report.classes if c.stale)
    named = ", ".join(f"{s.symbol} ({_why_stale(s)})" for s in report.stalest[:5])
    return [Alert("stale_assets", "warning", f"{report.stale} assets are stale ({classes}); stalest: {named}")]


def _why_stale(asset: StaleAsset) -> str:
    if asset.age_seconds is None:
        return "never quoted"
    if asset.why == "last close not stored yet":
        # Its age is within the target: what it misses is the close of its market's last session.
        return "last close not stored yet"
    return f"{asset.age_seconds:.0f} s old"


def dead_letters_rising() -> list[Alert]:
    """More open dead letters than at the previous check; names the tasks and exceptions."""
    rows = list(
        DeadLetter.objects.filter(state=DeadLetter.State.OPEN)
        .values_list("task_name", "exception_class")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    now_open = sum(n for _, _, n in rows)
    before = cache.get(OPEN_LETTERS_KEY)
    cache.set(OPEN_LETTERS_KEY, now_open, timeout=None)
    if before is None or now_open <= before:
        return []
    top = ", ".join(f"{task} {exc.rsplit('.', 1)[-1]} x{n}" for task, exc, n in rows[:5])
    return [Alert("dead_letters_rising", "warning", f"open dead letters rose from {before} to {now_open}: {top}")]


def breakers_open() -> list[Alert]:
    """Providers whose circuit breaker is open."""
    from backend.tasks.sources import QUOTE_CHAINS, circuit_breaker

    providers = sorted({p for chain in QUOTE_CHAINS.values() for p in chain} | {"newsapi"})
    breaker = circuit_breaker()
    return [
        Alert(f"breaker_open:{p}", "warning", f"circuit breaker of {p} is open: its chains fail over")
        for p in providers
        if breaker.state(p).state == OPEN
    ]


def queue_wait_over_budget() -> list[Alert]:
    """Queues whose p95 wait since the last check exceeds their budget."""
    budgets = settings.QUEUE_WAIT_BUDGET_SECONDS
    return [
        Alert(
            f"queue_wait:{queue}",
            "warning",
            f"queue {queue}: p95 wait up to {p95:.0f} s since the last check, budget {budgets[queue]:.0f} s",
        )
        for queue, p95 in sorted(queue_wait_p95().items())
        if queue in budgets and p95 > budgets[queue]
    ]
