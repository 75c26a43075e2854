"""Market conditions per asset: is its market trading, is it moving, is its quote stale?

Three small pure measures (``measure_volatility``, ``measure_staleness`` and the exchange clock),
the rule of what holds a closed market's last close (``last_close_stored``), and one loader,
``load_conditions``, that reads what they need for many assets in two queries. The routing decision
(``backend.tasks.routing``) consumes the result; nothing here decides. ``market_clocks`` gives the
simulated provider each symbol's clock, so a closed stock holds its last close there too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db.models import QuerySet

from backend.common.exchange_sessions import ALWAYS_OPEN, MarketClock, Phase, market_clock

from .bar_stats import BarStats, recent_bar_stats, stats_of
from .dbfunctions import EpochSeconds, from_epoch
from .models import Asset, Quote

# Crypto trades on no exchange calendar: its assets are always in session whatever their code says.
ALWAYS_OPEN_CLASSES = frozenset({"crypto"})


class Level(StrEnum):
    """How much an asset is moving."""

    CALM = "calm"
    VOLATILE = "volatile"
    UNKNOWN = "volatility unknown"


@dataclass(frozen=True)
class Volatility:
    """The measures behind a level: |24 h change| and the stdev of recent bar returns, in percent."""

    level: Level
    change_24h_pct: float | None = None
    realised_pct: float | None = None
    bars: int = 0

    def describe(self) -> str:
        """E.g. ``volatile (|24h| 7.20% >= 5%, realised 1.10% over 20 bars)``."""
        parts = []
        if self.change_24h_pct is not None:
            parts.append(f"|24h| {abs(self.change_24h_pct):.2f}%")
        if self.realised_pct is not None:
            parts.append(f"realised {self.realised_pct:.2f}% over {self.bars} bars")
        elif self.bars:
            parts.append(f"only {self.bars} bars")
        else:
            parts.append("no bars yet")
        return f"{self.level.value} ({', '.join(parts)})"


@dataclass(frozen=True)
class Staleness:
    """Age of the latest quote by the provider's as-of time against the target that applies now."""

    stale: bool
    age_seconds: float | None
    target_seconds: float
    note: str = ""

    def describe(self) -> str:
        """E.g. ``stale (age 1h02m > target 10m)``."""
        word = "stale" if self.stale else "fresh"
        if self.age_seconds is None:
            return f"{word} ({self.note or 'no quote yet'})"
        text = f"{word} (age {_duration(self.age_seconds)}, target {_duration(self.target_seconds)})"
        return f"{text[:-1]}; {self.note})" if self.note else text


@dataclass(frozen=True)
class Thresholds:
    """Above either value an asset is volatile."""

    change_24h_pct: float
    realised_pct: float


@dataclass(frozen=True, slots=True)
class AssetRef:
    """The columns a condition reads of one asset: a dispatch reads thousands, as tuples, not model instances."""

    pk: int
    symbol: str
    exchange: str
    asset_class: str


def asset_refs(assets: QuerySet[Asset]) -> list[AssetRef]:
    """``assets`` as references, in the queryset's order, in one query of four columns."""
    return [AssetRef(*row) for row in assets.values_list("pk", "symbol", "exchange", "asset_type__code")]


@dataclass(frozen=True)
class AssetCondition:
    """Everything the routing decision needs to know about one asset, read at one moment."""

    symbol: str
    asset_class: str
    clock: MarketClock
    volatility: Volatility
    staleness: Staleness
    last_fetched_at: datetime | None = None


def measure_volatility(
    change_24h_pct: float | Decimal | None, closes: Sequence[float | Decimal], thresholds: Thresholds, min_bars: int
) -> Volatility:
    """Volatile when either measure passes its threshold; calm only when the bars say so; else unknown."""
    return volatility_of(change_24h_pct, stats_of([float(c) for c in closes]), thresholds, min_bars)


def volatility_of(
    change_24h_pct: float | Decimal | None, stats: BarStats | None, thresholds: Thresholds, min_bars: int
) -> Volatility:
    """``measure_volatility`` from the bars' statistics (``recent_bar_stats``) instead of their closes."""
    change = float(change_24h_pct) if change_24h_pct is not None else None
    bars = stats.bars if stats is not None else 0
    realised = stats.realised_pct if stats is not None and bars >= max(min_bars, 3) else None
    if (change is not None and abs(change) >= thresholds.change_24h_pct) or (
        realised is not None and realised >= thresholds.realised_pct
    ):
        level = Level.VOLATILE
    elif realised is not None:
        level = Level.CALM
    else:
        level = Level.UNKNOWN  # no bars yet: say so rather than guess calm
    return Volatility(level, change, realised, bars)


@dataclass(frozen=True, slots=True)
class CloseMarks:
    """Outside the session, the two moments that say whether a quote holds the market's last close."""

    settled: datetime  # a quote fetched from here on holds the close
    grace_ends: datetime  # a quote fetched before ``settled`` is stale from here on


def close_marks(clock: MarketClock, target_seconds: float, settle_seconds: float) -> CloseMarks | None:
    """The close's marks at ``clock`` (None in session or for an always-open market).

    The closing price has settled ``settle_seconds`` after the close (the closing snapshot's delay);
    the snapshot may then take a target's time to be stored, as any quote may.
    """
    if clock.in_session or clock.last_close is None:
        return None
    settled = clock.last_close + timedelta(seconds=settle_seconds)
    return CloseMarks(settled, settled + timedelta(seconds=target_seconds))


def last_close_stored(fetched_at: datetime | None, clock: MarketClock, settle_seconds: float) -> bool:
    """Whether a quote fetched at ``fetched_at`` holds the market's last close (always, in session).

    Judged by when we fetched it, not by the market time the provider stamps: a provider asked once
    the close has settled answers with the close whatever it stamps (Yahoo: the last trade, 16:00:00
    or 15:59:58; Alpha Vantage: the trading day, read as its close; the simulated provider: the close
    itself), and asking again before the next session brings nothing new. A quote fetched before that
    moment cannot hold the close.
    """
    marks = close_marks(clock, 0.0, settle_seconds)
    return marks is None or (fetched_at is not None and fetched_at >= marks.settled)


def measure_staleness(
    as_of: datetime | None,
    clock: MarketClock,
    target_seconds: float,
    *,
    fetched_at: datetime | None = None,
    settle_seconds: float = 0.0,
) -> Staleness:
    """In session a quote must be younger than the target; outside it, it must hold the last close.

    Holding the last close: priced no earlier than the target before the close (a thin stock's last
    trade may precede it) and fetched once the close had settled (``last_close_stored``). Until the
    closing snapshot is due and has had a target's time to arrive, a quote that was fresh at the
    close still counts, so every evening is not an outage. ``fetched_at`` None reads the quote as
    fetched at its as-of time.
    """
    effective = effective_target(clock, target_seconds)
    return _staleness(
        as_of, fetched_at, clock, target_seconds, effective, close_marks(clock, target_seconds, settle_seconds)
    )


def _staleness(
    as_of: datetime | None,
    fetched_at: datetime | None,
    clock: MarketClock,
    target_seconds: float,
    effective: float,
    marks: CloseMarks | None,
) -> Staleness:
    """``measure_staleness`` with the per-clock values worked out once (a dispatch measures thousands)."""
    if as_of is None:
        return Staleness(True, None, target_seconds, "no quote yet")
    age = max(0.0, (clock.at - as_of).total_seconds())
    if marks is None:
        return Staleness(age > target_seconds, age, target_seconds)
    if age > effective:
        return Staleness(True, age, effective, f"{clock.phase.value}: priced before the last close")
    if (fetched_at or as_of) < marks.settled and clock.at >= marks.grace_ends:
        return Staleness(True, age, effective, f"{clock.phase.value}: last close not stored yet")
    return Staleness(False, age, effective, f"{clock.phase.value}: holds the last close")


def effective_target(clock: MarketClock, target_seconds: float) -> float:
    """The age a quote may reach at ``clock.at``: the target in session, more outside it.

    Outside the session the price cannot move: a quote priced at (or just before) the last close is
    as fresh as it can be, however old, so the target grows by the time since that close.
    """
    if clock.in_session or clock.last_close is None:
        return target_seconds
    return (clock.at - clock.last_close).total_seconds() + target_seconds


def clock_for(asset_class: str, exchange: str, at: datetime) -> MarketClock:
    """The market clock that applies to an asset of ``asset_class`` listed on ``exchange``."""
    return market_clock(ALWAYS_OPEN if asset_class in ALWAYS_OPEN_CLASSES else exchange, at)


def market_clocks(asset_class: str, symbols: Sequence[str], at: datetime) -> dict[str, MarketClock]:
    """The market clock at ``at`` of each of these symbols' assets of ``asset_class`` (unknown ones left out).

    One query for the exchanges, read at call time so an exchange edited in admin counts at once, and
    one clock per exchange. For a provider that must know whether a symbol's market is open.
    """
    exchanges = dict(
        Asset.objects.of_class(asset_class).filter(symbol__in=list(symbols)).values_list("symbol", "exchange")
    )
    clocks = {code: clock_for(asset_class, code, at) for code in set(exchanges.values())}
    return {symbol: clocks[code] for symbol, code in exchanges.items()}


def thresholds_for(asset_class: str) -> Thresholds:
    """Volatility thresholds of an asset class, from settings (a ``default`` entry for other classes)."""
    table = settings.VOLATILITY_THRESHOLDS
    change, realised = table.get(asset_class, table["default"])
    return Thresholds(change, realised)


def load_conditions(
    assets: Iterable[Asset | AssetRef],
    at: datetime,
    targets: Mapping[str, float],
    default_target: float,
    *,
    scope: QuerySet[Asset] | None = None,
    stored_by_at: bool = False,
) -> list[AssetCondition]:
    """Clock, volatility and staleness of each asset at ``at``: one query for quotes, one for bars.

    ``targets`` maps an asset class to the seconds its quotes may age in session. ``scope``, the
    query ``assets`` came from, lets both queries select by it instead of by a list of thousands of
    ids (each of which the client would quote into the SQL text). ``stored_by_at`` leaves out quotes
    fetched after ``at`` (a question about the past: only one quote per asset is kept, the latest).
    """
    assets = list(assets)
    among: dict[str, object] = (
        {"asset__in": scope.values("pk")} if scope is not None else {"asset_id__in": [a.pk for a in assets]}
    )
    if stored_by_at:
        among["fetched_at__lte"] = at
    # Only the three columns read below: a dispatch reads one quote per asset of the class. Unordered:
    # Quote's default order (by symbol) would join the assets and sort them for a dict keyed by id.
    rows = (
        Quote.objects.filter(**among)
        .order_by()
        .annotate(as_of_s=EpochSeconds("as_of"), fetched_at_s=EpochSeconds("fetched_at"))
        .values_list("asset_id", "change_24h_pct", "as_of_s", "fetched_at_s")
    )
    quotes = {asset_id: (change, from_epoch(as_of), from_epoch(fetched)) for asset_id, change, as_of, fetched in rows}
    stats = recent_bar_stats(at, scope=scope, ids=[a.pk for a in assets] if scope is None else ())
    # clock, target, effective target and the close's marks
    clocks: dict[tuple[str, str], tuple[MarketClock, float, float, CloseMarks | None]] = {}
    thresholds: dict[str, Thresholds] = {}
    min_bars = settings.VOLATILITY_MIN_BARS
    settle = settings.CLOSE_SNAPSHOT_DELAY_SECONDS
    conditions = []
    for asset in assets:
        asset_class = asset.asset_class if isinstance(asset, AssetRef) else asset.asset_type.code
        key = (asset_class, asset.exchange)
        if key not in clocks:
            # One clock and one effective target per (class, exchange), not per asset.
            clock = clock_for(asset_class, asset.exchange, at)
            target = targets.get(asset_class, default_target)
            clocks[key] = (clock, target, effective_target(clock, target), close_marks(clock, target, settle))
        if asset_class not in thresholds:
            thresholds[asset_class] = thresholds_for(asset_class)
        clock, target, effective, marks = clocks[key]
        change, as_of, fetched_at = quotes.get(asset.pk, (None, None, None))
        volatility = volatility_of(change, stats.get(asset.pk), thresholds[asset_class], min_bars)
        staleness = _staleness(as_of, fetched_at, clock, target, effective, marks)
        conditions.append(AssetCondition(asset.symbol, asset_class, clock, volatility, staleness, fetched_at))
    return conditions


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


__all__ = [
    "AssetCondition",
    "CloseMarks",
    "Level",
    "Phase",
    "Staleness",
    "Thresholds",
    "Volatility",
    "clock_for",
    "close_marks",
    "effective_target",
    "last_close_stored",
    "load_conditions",
    "market_clocks",
    "measure_staleness",
    "measure_volatility",
    "volatility_of",
]
