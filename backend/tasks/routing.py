"""The one place that decides which queue, and at what priority, a batch of work goes to.

Dispatchers call ``route_for`` for every batch they send; no task names its own queue. Quote batches
go through ``decide`` instead, which reads the market's state: session, volatility, staleness.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from backend.common.exchange_sessions import POST_MARKET_LENGTH, MarketClock, Phase
from backend.market.conditions import AssetCondition, Level, last_close_stored


class WorkKind(StrEnum):
    """What a batch does; each kind has its own urgency."""

    QUOTES = "quotes"
    NEWS = "news"
    INDICATORS = "indicators"
    BACKFILL = "backfill"
    MAINTENANCE = "maintenance"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Route:
    """Where a message goes: a declared queue and a priority (0 is the most urgent)."""

    queue: str
    priority: int

    def as_options(self) -> dict[str, object]:
        """Options for ``apply_async``."""
        return {"queue": self.queue, "priority": self.priority}


# Crypto trades around the clock and moves fastest, so its quotes lead; indicators and
# news can wait minutes; backfill and housekeeping fill idle time. Backfill is 9, behind the low
# quote batches (8): a close fetched before it settled is refetched on a closed day at low/8, and
# must not wait for a backlog of backfills where the broker honours priorities.
_BASE_ROUTES = {
    (WorkKind.QUOTES, "crypto"): Route("high", 0),
    (WorkKind.QUOTES, "stock"): Route("high", 3),
    WorkKind.HEARTBEAT: Route("high", 0),
    WorkKind.NEWS: Route("medium", 5),
    WorkKind.INDICATORS: Route("medium", 6),
    WorkKind.BACKFILL: Route("low", 9),
    WorkKind.MAINTENANCE: Route("low", 9),
}


def route_for(kind: WorkKind, asset_class: str | None = None) -> Route:
    """Queue and priority for a batch of ``kind`` work on ``asset_class`` assets."""
    route = _BASE_ROUTES.get((kind, asset_class)) if asset_class else None
    if route is None:
        route = _BASE_ROUTES.get(kind)
    if route is None:
        route = Route("medium", 5) if kind is WorkKind.QUOTES else Route("low", 9)
    return route


# --- quotes by market conditions -------------------------------------------------------------------
# Routes a quote batch can take, most urgent first. Crypto in calm water leads stocks in calm water;
# anything volatile or stale in session jumps both.
URGENT = Route("high", 0)
CRYPTO_CALM = Route("high", 2)
STOCK_CALM = Route("high", 3)
CATCH_UP = Route("medium", 4)  # the closing snapshot, a first quote outside the session (closed days too)
PRE_MARKET = Route("medium", 5)
AFTER_HOURS = Route("low", 8)
LAST_CLOSE = Route("low", 8)  # a closed day's refetch of a close not settled when fetched
_QUEUE_RANK = {"high": 0, "medium": 1, "low": 2}
# The order reasons list their counts in.
_WHY_ORDER = (
    "volatile",
    "stale",
    "volatility unknown",
    "calm",
    "no quote yet",
    "closing snapshot",
    "pre-market cadence",
    "after-hours cadence",
    "last close not stored yet",
    "operator run-now",
    "not due",
    "closed day",
)


@dataclass(frozen=True)
class QuotePolicy:
    """The cadences that apply outside a stock's regular session, in seconds."""

    close_snapshot_delay: float
    after_hours_every: float
    pre_market_every: float

    @classmethod
    def from_settings(cls) -> QuotePolicy:
        """The policy the settings describe, read at call time."""
        from django.conf import settings

        return cls(
            close_snapshot_delay=settings.CLOSE_SNAPSHOT_DELAY_SECONDS,
            after_hours_every=settings.AFTER_HOURS_QUOTE_SECONDS,
            pre_market_every=settings.PRE_MARKET_QUOTE_SECONDS,
        )


@dataclass(frozen=True)
class Decision:
    """Where a quote batch goes (None: send nothing) and why, in words an operator can read."""

    route: Route | None
    reason: str

    @property
    def send(self) -> bool:
        """Whether the batch is fetched at all."""
        return self.route is not None

    def options(self) -> dict[str, object]:
        """Options for ``apply_async``; only for a decision that sends."""
        if self.route is None:
            raise ValueError(f"nothing to send: {self.reason}")
        return self.route.as_options()


@dataclass(frozen=True)
class RoutedBatch:
    """A batch of symbols that share one decision."""

    decision: Decision
    symbols: tuple[str, ...]


def decide(conditions: Sequence[AssetCondition], policy: QuotePolicy, *, run_now: bool = False) -> Decision:
    """Queue, priority and reason for fetching quotes of a batch of assets in the given conditions.

    Pure: every fact (clock, volatility, staleness, last fetch) arrives in ``conditions``. The batch
    takes the most urgent route any of its assets needs; ``run_now`` is an operator's explicit request,
    which fetches even what the calendar would leave alone.
    """
    return _decision(conditions, [_verdict(c, policy, run_now) for c in conditions])


def _decision(conditions: Sequence[AssetCondition], verdicts: Sequence[tuple[Route | None, str]]) -> Decision:
    """The batch's decision from its assets' own verdicts (``decide`` without working them out again)."""
    routes = [route for route, _ in verdicts if route is not None]
    route = min(routes, key=lambda r: (_QUEUE_RANK.get(r.queue, 9), r.priority)) if routes else None
    return Decision(route, _reason(conditions, [why for _, why in verdicts], route))


def plan_routed_batches(
    conditions: Sequence[AssetCondition], policy: QuotePolicy, batch_size: int, *, run_now: bool = False
) -> list[RoutedBatch]:
    """Group assets by their own decision and split each group into batches of at most ``batch_size``.

    Volatile or stale assets so ride in an urgent batch of their own instead of behind calm ones.
    Assets nobody needs to fetch form batches with no route, kept so the plan can say why.
    """
    groups: dict[tuple[Route | None, str], list[tuple[AssetCondition, tuple[Route | None, str]]]] = {}
    for condition in conditions:
        verdict = _verdict(condition, policy, run_now)
        groups.setdefault((verdict[0], condition.asset_class), []).append((condition, verdict))
    ordered = sorted(groups.items(), key=lambda item: _route_rank(item[0][0]))
    batches = []
    for (route, _), members in ordered:
        size = len(members) if route is None else max(1, batch_size)
        for start in range(0, len(members), size):
            chunk = [condition for condition, _ in members[start : start + size]]
            verdicts = [verdict for _, verdict in members[start : start + size]]
            batches.append(RoutedBatch(_decision(chunk, verdicts), tuple(c.symbol for c in chunk)))
    return batches


def _route_rank(route: Route | None) -> tuple[int, int]:
    return (9, 9) if route is None else (_QUEUE_RANK.get(route.queue, 9), route.priority)


def _verdict(c: AssetCondition, policy: QuotePolicy, run_now: bool) -> tuple[Route | None, str]:
    """One asset's route and the word that explains it."""
    clock = c.clock
    if clock.in_session:
        if c.volatility.level is Level.VOLATILE:
            return URGENT, "volatile"
        if c.staleness.stale:
            return URGENT, "stale"
        calm = CRYPTO_CALM if clock.phase is Phase.ALWAYS_OPEN else STOCK_CALM
        return calm, "volatility unknown" if c.volatility.level is Level.UNKNOWN else "calm"
    fetched = c.last_fetched_at
    close_stored = last_close_stored(fetched, clock, policy.close_snapshot_delay)
    if clock.phase is Phase.CLOSED_DAY:
        # Closed is not "never": a quote that does not hold the last close (none at all, or one fetched
        # before that close settled) is fetched once; after that nothing new comes until the next open.
        # A stock never quoted goes to medium like on a trading day, not low: a stack first started on a
        # weekend queues a backfill per asset in low, and the embedded filesystem broker ignores
        # priorities (a worker takes its queues in turn), so low/8 would wait behind every backfill.
        if fetched is None:
            return CATCH_UP, "no quote yet"
        if not close_stored:
            return LAST_CLOSE, "last close not stored yet"
        return (AFTER_HOURS, "operator run-now") if run_now else (None, "closed day")
    if fetched is None:
        return CATCH_UP, "no quote yet"
    since_fetch = (clock.at - fetched).total_seconds()
    if clock.last_close is not None and not close_stored:
        # One fetch once the close has settled gives the closing price; later ticks are cadence.
        if clock.at >= clock.last_close + timedelta(seconds=policy.close_snapshot_delay):
            return CATCH_UP, "closing snapshot"
    if clock.phase is Phase.PRE_MARKET and since_fetch >= policy.pre_market_every:
        return PRE_MARKET, "pre-market cadence"
    if clock.phase is not Phase.PRE_MARKET and since_fetch >= policy.after_hours_every:
        if not _overnight_with_everything(clock, fetched):
            return AFTER_HOURS, "after-hours cadence"
    return (AFTER_HOURS, "operator run-now") if run_now else (None, "not due")


def _overnight_with_everything(clock: MarketClock, fetched: datetime) -> bool:
    """Overnight, a quote fetched after the last extended session ended holds every trade until pre-market."""
    if clock.phase is not Phase.OVERNIGHT or clock.last_close is None:
        return False
    return fetched >= clock.last_close + POST_MARKET_LENGTH


def _reason(conditions: Sequence[AssetCondition], whys: list[str], route: Route | None) -> str:
    """E.g. ``stock open, 3 volatile, 2 stale -> high/0`` or ``stock closed day (weekend), 12 closed day -> none``."""
    heads = []
    # Thousands of conditions share a handful of (class, phase, note) triples: format each once.
    for asset_class, phase, note in dict.fromkeys((c.asset_class, c.clock.phase, c.clock.day_note) for c in conditions):
        head = f"{asset_class} {phase.value}" + (f" ({note})" if note else "")
        if head not in heads:
            heads.append(head)
    counts = Counter(whys)
    parts = [f"{counts[why]} {why}" for why in _WHY_ORDER if counts[why]]
    target = f"{route.queue}/{route.priority}" if route else "none"
    return f"{' + '.join(heads) or 'no assets'}, {', '.join(parts) or 'nothing to fetch'} -> {target}"
