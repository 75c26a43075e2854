"""Freshness of every refreshable asset, measured in the database: which assets are stale, per class.

An asset's age is counted from the PROVIDER's as-of time of its quote (``Quote.as_of``), not from
when we fetched it: a Friday close re-fetched on Sunday is a Friday price. Its target follows its
market's calendar (``conditions.effective_target``): in session the class's target, outside the
session the time since the last close on top of it. Outside the session a quote is fresh when it
holds the last close (``conditions.measure_staleness``, the same rule the router and explain_route
use): priced no earlier than a target before the close, and fetched once the close had settled
(after the closing snapshot's grace; before it, a quote fresh at the close still counts).

Targets differ only per (asset class, exchange) pair, and there are a handful of those. Each pair's
rule becomes two cutoff timestamps (as-of, and fetched-at outside the session); the database then
counts, per class, the assets whose quote is missing or older than a cutoff, and returns the age
quantiles and the stalest assets. Three small queries whatever the number of assets, no model
instance per asset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Case, Count, DateTimeField, DurationField, ExpressionWrapper, F, Q, Value, When

from .conditions import clock_for, close_marks, effective_target
from .models import Asset

# Quantiles of asset age reported per class (label value -> fraction of assets younger).
QUANTILES = {"0.5": 0.5, "0.9": 0.9, "0.99": 0.99, "1": 1.0}
STALEST_LIMIT = 10


@dataclass(frozen=True)
class ClassFreshness:
    """One asset class: how many assets, how many stale or never quoted, and how old their quotes are."""

    asset_class: str
    assets: int
    stale: int
    without_quote: int
    target_seconds: float
    age_quantiles: dict[str, float] = field(default_factory=dict)

    @property
    def fresh(self) -> bool:
        """Every asset of the class meets its target."""
        return self.stale == 0

    @property
    def fresh_share(self) -> float:
        """Share of the class's assets that meet their target (1.0 for an empty class)."""
        return 1.0 if not self.assets else (self.assets - self.stale) / self.assets

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (the heartbeat's detail, /health/data)."""
        return {**asdict(self), "fresh": self.fresh, "fresh_share": round(self.fresh_share, 4)}


@dataclass(frozen=True)
class StaleAsset:
    """One asset past its target: its age (None without any quote), the target it missed and why."""

    symbol: str
    asset_class: str
    exchange: str
    age_seconds: float | None
    target_seconds: float
    as_of: datetime | None
    source: str
    fetched_at: datetime | None
    why: str = ""  # "no quote", "older than its target" or "last close not stored yet"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        row = asdict(self)
        row["as_of"] = self.as_of.isoformat() if self.as_of else None
        row["fetched_at"] = self.fetched_at.isoformat() if self.fetched_at else None
        return row


@dataclass(frozen=True)
class FreshnessReport:
    """Freshness of every class at one moment, and the stalest assets across classes."""

    at: datetime
    classes: tuple[ClassFreshness, ...]
    stalest: tuple[StaleAsset, ...]

    @property
    def stale(self) -> int:
        """Stale assets across every class."""
        return sum(c.stale for c in self.classes)

    def by_class(self) -> dict[str, ClassFreshness]:
        """The classes keyed by code."""
        return {c.asset_class: c for c in self.classes}

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``{"at", "stale", "classes": {code: {...}}, "stalest": [...]}``."""
        return {
            "at": self.at.isoformat(),
            "stale": self.stale,
            "classes": {c.asset_class: c.as_dict() for c in self.classes},
            "stalest": [s.as_dict() for s in self.stalest],
        }


class _PercentileDisc(Aggregate):
    """PostgreSQL's ordered-set aggregate: the value at ``fraction`` of the ordered group."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s DESC)"

    def __init__(self, expression: str, fraction: float) -> None:
        super().__init__(expression, output_field=DateTimeField(), fraction=float(fraction))


@dataclass(frozen=True)
class _PairRule:
    """What a quote of one (class, exchange) pair must meet at the moment measured."""

    as_of_cutoff: datetime  # priced before this: stale
    target: float  # the effective target the cutoff comes from
    settled: datetime | None  # fetched before this: the last close is not stored (None: no such rule now)


def _pair_rule(code: str, exchange: str, now: datetime, target: float, settle: float) -> _PairRule:
    """``measure_staleness``'s rule for one pair, as cutoffs the database can compare with."""
    clock = clock_for(code, exchange, now)
    effective = effective_target(clock, target)
    marks = close_marks(clock, target, settle)
    # Before the grace ends a quote fetched before the close still counts: no fetch-time rule yet.
    settled = marks.settled if marks is not None and now >= marks.grace_ends else None
    return _PairRule(now - timedelta(seconds=effective), effective, settled)


def measure_freshness(
    now: datetime,
    targets: Mapping[str, float],
    default_target: float,
    *,
    stalest: int = STALEST_LIMIT,
    settle_seconds: float | None = None,
) -> FreshnessReport:
    """Freshness of every active, unquarantined asset at ``now``; ``targets`` maps a class to its in-session seconds.

    ``settle_seconds`` (default ``CLOSE_SNAPSHOT_DELAY_SECONDS``) is how long after a close a fetch
    holds that close.
    """
    settle = settings.CLOSE_SNAPSHOT_DELAY_SECONDS if settle_seconds is None else settle_seconds
    assets = Asset.objects.refreshable()
    pairs = sorted(set(assets.values_list("asset_type__code", "exchange").distinct()))
    if not pairs:
        return FreshnessReport(now, (), ())
    rules = {(c, e): _pair_rule(c, e, now, targets.get(c, default_target), settle) for c, e in pairs}
    cutoff = Case(
        *(When(asset_type__code=c, exchange=e, then=Value(r.as_of_cutoff)) for (c, e), r in rules.items()),
        output_field=DateTimeField(),
    )
    stale = Q(quote__isnull=True) | Q(quote__as_of__lt=F("cutoff"))
    aliases: dict[str, object] = {"cutoff": cutoff}
    settled_rules = {pair: r.settled for pair, r in rules.items() if r.settled is not None}
    if settled_rules:
        # Pairs without the rule get NULL: "fetched_at < NULL" is never true.
        aliases["settled"] = Case(
            *(When(asset_type__code=c, exchange=e, then=Value(at)) for (c, e), at in settled_rules.items()),
            default=None,
            output_field=DateTimeField(),
        )
        stale |= Q(quote__fetched_at__lt=F("settled"))
    # alias, not annotate: an annotation before values() would join the GROUP BY.
    annotated = assets.alias(**aliases)
    postgres = connection.vendor == "postgresql"
    quantile_columns = (
        {f"q{i}": _PercentileDisc("quote__as_of", fraction) for i, fraction in enumerate(QUANTILES.values())}
        if postgres
        else {}
    )
    rows = (
        annotated.values("asset_type__code")
        .annotate(
            n=Count("id"),
            n_stale=Count("id", filter=stale),
            n_missing=Count("id", filter=Q(quote__isnull=True)),
            **quantile_columns,
        )
        .order_by("asset_type__code")
    )
    fallback = {} if postgres else _quantiles_in_python(assets, now)
    classes = []
    for row in rows:
        code = row["asset_type__code"]
        if postgres:
            quantiles = {
                label: max(0.0, (now - row[f"q{i}"]).total_seconds())
                for i, label in enumerate(QUANTILES)
                if row[f"q{i}"] is not None
            }
        else:
            quantiles = fallback.get(code, {})
        target = targets.get(code, default_target)
        classes.append(ClassFreshness(code, row["n"], row["n_stale"], row["n_missing"], target, quantiles))
    late = ExpressionWrapper(F("cutoff") - F("quote__as_of"), output_field=DurationField())
    worst = (
        annotated.filter(stale)
        .annotate(late=late)
        .order_by(F("late").desc(nulls_first=True), "symbol")
        .values_list("symbol", "asset_type__code", "exchange", "quote__as_of", "quote__source", "quote__fetched_at")
    )[:stalest]
    named = tuple(
        StaleAsset(
            symbol,
            code,
            exchange,
            max(0.0, (now - as_of).total_seconds()) if as_of else None,
            rules[(code, exchange)].target,
            as_of,
            source or "",
            fetched,
            _why(as_of, rules[(code, exchange)]),
        )
        for symbol, code, exchange, as_of, source, fetched in worst
    )
    return FreshnessReport(now, tuple(classes), named)


def _why(as_of: datetime | None, rule: _PairRule) -> str:
    """Which part of the rule a stale asset missed."""
    if as_of is None:
        return "no quote"
    return "older than its target" if as_of < rule.as_of_cutoff else "last close not stored yet"


def _quantiles_in_python(assets, now: datetime) -> dict[str, dict[str, float]]:
    """Age quantiles per class where the database has no ordered-set aggregates (SQLite, development)."""
    ages: dict[str, list[float]] = defaultdict(list)
    for code, as_of in assets.filter(quote__isnull=False).values_list("asset_type__code", "quote__as_of"):
        ages[code].append(max(0.0, (now - as_of).total_seconds()))
    result: dict[str, dict[str, float]] = {}
    for code, values in ages.items():
        values.sort()
        result[code] = {label: _nearest_rank(values, q) for label, q in QUANTILES.items()}
    return result


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    """The nearest-rank quantile (what percentile_disc returns) of an ascending list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


__all__ = ["ClassFreshness", "FreshnessReport", "StaleAsset", "measure_freshness"]
