"""Freshness per asset, summed per asset class: one stale symbol shows up even when its class is fresh.

Each refreshable asset's quote age (the provider's as-of time) is measured against the class target
on the asset's own market clock (``backend.market.conditions``), so a Friday close read on Sunday is
fresh and a symbol that fails on every tick is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from backend.market.conditions import clock_for, measure_staleness
from backend.market.models import Asset
from backend.tasks.maintenance import DEFAULT_FRESHNESS_SECONDS, freshness_targets


@dataclass(frozen=True)
class AssetAge:
    """One asset's quote age against the target that applies to it now."""

    symbol: str
    asset_class: str
    age_seconds: float | None
    target_seconds: float
    stale: bool
    note: str = ""

    @property
    def overdue_ratio(self) -> float:
        """Age over target (infinite without any quote): how the stalest are ranked."""
        return float("inf") if self.age_seconds is None else self.age_seconds / max(self.target_seconds, 1.0)


@dataclass(frozen=True)
class ClassFreshness:
    """How fresh one asset class is: counts, and its stalest assets first."""

    asset_class: str
    assets: int
    stale: int
    target_seconds: float
    stalest: tuple[AssetAge, ...]

    @property
    def fresh_percent(self) -> float:
        """Share of the class's assets that are fresh."""
        return round(100 * (self.assets - self.stale) / self.assets, 1) if self.assets else 100.0


def asset_ages(now: datetime | None = None) -> list[AssetAge]:
    """Every refreshable asset's age and verdict (quarantined assets are not fetched, so not counted)."""
    now = now or timezone.now()
    targets = freshness_targets()
    clocks = {}
    ages = []
    rows = Asset.objects.refreshable().values_list("symbol", "asset_type__code", "exchange", "quote__as_of")
    for symbol, asset_class, exchange, as_of in rows.order_by("symbol"):
        key = (asset_class, exchange)
        if key not in clocks:
            clocks[key] = clock_for(asset_class, exchange, now)
        measured = measure_staleness(as_of, clocks[key], targets.get(asset_class, DEFAULT_FRESHNESS_SECONDS))
        ages.append(
            AssetAge(symbol, asset_class, measured.age_seconds, measured.target_seconds, measured.stale, measured.note)
        )
    return ages


def class_freshness(now: datetime | None = None, *, stalest: int = 5) -> list[ClassFreshness]:
    """Per asset class: assets, stale count, the class's in-session target and its ``stalest`` assets."""
    targets = freshness_targets()
    by_class: dict[str, list[AssetAge]] = {}
    for age in asset_ages(now):
        by_class.setdefault(age.asset_class, []).append(age)
    report = []
    for asset_class, ages in sorted(by_class.items()):
        ranked = sorted(ages, key=lambda a: (not a.stale, -a.overdue_ratio, a.symbol))
        report.append(
            ClassFreshness(
                asset_class=asset_class,
                assets=len(ages),
                stale=sum(1 for a in ages if a.stale),
                target_seconds=targets.get(asset_class, DEFAULT_FRESHNESS_SECONDS),
                stalest=tuple(ranked[:stalest]),
            )
        )
    return report
