"""What the dashboard's tables show, read fresh for each page: queues, providers, liveness, dead
letters and runs. Each function is one small read; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from backend import deadletters
from backend.deadletters.models import DeadLetter
from backend.market.freshness import ClassFreshness, StaleAsset
from backend.monitoring.health import Check, check_beat, check_workers
from backend.monitoring.metrics import queue_depths
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.models import DispatchRun

from .queue_wait import oldest_waits

# A panel whose rows have an admin page is shown only to those who may view that page. Liveness and
# provider state have none: they are the platform's own state, shown to every staff member.
PANEL_PERMISSIONS = {
    "freshness": ("market.view_asset", "freshness (names assets)"),
    "tasks": ("django_celery_results.view_taskresult", "the task chart"),
    "dead_letters": ("deadletters.view_deadletter", "dead letters"),
    "runs": ("tasks.view_dispatchrun", "dispatch runs and their charts"),
}


def visible_panels(user) -> frozenset[str]:
    """The panels ``user`` may see: those whose admin page's view permission they hold."""
    return frozenset(panel for panel, (permission, _) in PANEL_PERMISSIONS.items() if user.has_perm(permission))


def hidden_panels(visible: frozenset[str]) -> list[str]:
    """What is left out for lack of a permission, said on the page (``dead letters (deadletters.view_deadletter)``)."""
    return [f"{what} ({permission})" for panel, (permission, what) in PANEL_PERMISSIONS.items() if panel not in visible]


@dataclass(frozen=True)
class FreshnessRow:
    """One asset class as the dashboard shows it: counts, ages, and its stalest assets by name."""

    summary: ClassFreshness
    stalest: tuple[StaleAsset, ...]
    unnamed: int  # stale assets of the class beyond those named

    @property
    def fresh_percent(self) -> float:
        return round(100 * self.summary.fresh_share, 1)


@dataclass(frozen=True)
class QueueRow:
    """One broker queue: messages waiting, how long the oldest has waited, and whether a worker consumes it."""

    name: str
    waiting: int | None
    served: bool
    oldest_wait: float | None = None


@dataclass(frozen=True)
class ProviderRow:
    """One provider's circuit and pause, as every worker sees them (shared state in Redis)."""

    provider: str
    circuit: str
    failures: int
    circuit_seconds_left: float | None
    paused_until: datetime | None

    @property
    def healthy(self) -> bool:
        return self.circuit == "closed" and self.paused_until is None


@dataclass(frozen=True)
class LetterRow:
    """An open dead letter and what the current user may do with it."""

    letter: DeadLetter
    can_replay: bool
    can_discard: bool
    why_not: str


def freshness(now: datetime, *, per_class: int = 5) -> list[FreshnessRow]:
    """Each asset class's freshness with up to ``per_class`` of its stalest assets named."""
    report = current_freshness(now)
    rows = []
    for summary in report.classes:
        named = tuple(s for s in report.stalest if s.asset_class == summary.asset_class)[:per_class]
        rows.append(FreshnessRow(summary, named, max(0, summary.stale - len(named))))
    return rows


def liveness() -> tuple[Check, Check]:
    """Beat's heartbeat age and which queues have a live worker."""
    return check_beat(timezone.now()), check_workers()


def queues(workers: Check) -> list[QueueRow]:
    """Depth of each declared queue (None when the broker did not answer), its oldest message's wait,
    and whether it is served."""
    depths, waits = queue_depths(), oldest_waits()
    detail = workers.detail if isinstance(workers.detail, dict) else {}
    unserved = set(detail.get("queues_without_worker", settings.TASK_QUEUES))
    return [QueueRow(name, depths.get(name), name not in unserved, waits.get(name)) for name in settings.TASK_QUEUES]


def known_providers() -> list[str]:
    """Every provider a chain may call, in name order."""
    from backend.tasks.sources import NEWS_CHAIN, QUOTE_CHAINS

    return sorted({p for chain in QUOTE_CHAINS.values() for p in chain} | set(NEWS_CHAIN))


@dataclass(frozen=True)
class PanelNote:
    """A line above a panel's table: why it is empty, or that its state could not be read (``problem``)."""

    text: str = ""
    problem: bool = False

    def __bool__(self) -> bool:
        return bool(self.text)

    def __str__(self) -> str:
        return self.text


def providers() -> tuple[list[ProviderRow], PanelNote]:
    """Circuit and pause per provider as every worker sees them, or a note saying why there is none.

    The simulated provider has no breaker or pause, and without Redis each process keeps its own:
    the web process's breakers would show "closed" whatever the workers see, so none are shown.
    """
    from backend.tasks import rehearsal
    from backend.tasks.sources import circuit_breaker  # built lazily from settings on first use

    if settings.MARKET_DATA_MODE == "simulated":
        try:
            running = rehearsal.current()
        except (RedisError, DatabaseError) as exc:
            return [], PanelNote(f"fault rehearsal state unreadable ({type(exc).__name__})", problem=True)
        faults = f" Fault rehearsal on: {running.describe()}." if running else ""
        return [], PanelNote(
            "Not used in simulated mode: the offline simulated provider serves every asset class, with no "
            f"circuit breaker and no pause.{faults}",
            problem=running is not None,
        )
    if not settings.PROVIDER_STATE_REDIS_URL:
        return [], PanelNote(
            "Not shown: without Redis (PROVIDER_STATE_REDIS_URL) every worker process keeps its own circuit "
            "breakers and pauses, and this page cannot see them."
        )
    breaker = circuit_breaker()
    rows = []
    try:
        paused = breaker.pauses.paused()
        for name in known_providers():
            state = breaker.state(name)
            rows.append(ProviderRow(name, state.state, state.failures, state.retry_after, paused.get(name)))
    except RedisError as exc:
        return [], PanelNote(f"provider state unreadable ({type(exc).__name__})", problem=True)
    return rows, PanelNote()


def open_letters(user, *, limit: int = 20) -> tuple[list[LetterRow], int]:
    """The newest open dead letters (with this user's allowed actions) and how many are open."""
    qs = DeadLetter.objects.filter(state=DeadLetter.State.OPEN).order_by("-last_failure_at")
    may_replay = user.has_perm("deadletters.replay_deadletter")
    may_discard = user.has_perm("deadletters.discard_deadletter")
    rows = []
    for letter in qs[:limit]:
        refusal = deadletters.replay_refusal(letter)
        why = str(refusal) if refusal else ("" if may_replay else "you may not replay dead letters")
        rows.append(LetterRow(letter, may_replay and refusal is None, may_discard, why))
    return rows, qs.count()


def recent_runs(*, limit: int = 12) -> list[DispatchRun]:
    """The latest periodic runs that did work (skipped ticks are left out), newest first."""
    return list(DispatchRun.objects.exclude(status=DispatchRun.Status.SKIPPED).order_by("-started_at")[:limit])


def age_text(moment: datetime | None, now: datetime | None = None) -> str:
    """``42s``, ``5m10s``, ``3h02m`` or ``2d04h`` since ``moment`` (``never`` for None)."""
    if moment is None:
        return "never"
    now = now or datetime.now(tz=UTC)
    return duration_text((now - moment).total_seconds())


def duration_text(seconds: float | None) -> str:
    """A short human duration (``-`` for None)."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
