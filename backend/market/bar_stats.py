"""How much each asset's recent bars moved: the sample stdev of their returns, computed where the bars are.

A quote dispatch measures every asset of its class, and after a backfill each has its daily bars:
reading 20 closes of each of thousands of assets into Python costs more than everything else the
dispatch does. On PostgreSQL one aggregate query (window functions) returns a row per asset
instead; elsewhere (the embedded SQLite default) the closes are read and reduced here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import FloatField, QuerySet
from django.db.models.functions import Cast

from .models import Asset, PriceBar

_SPAN = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class BarStats:
    """An asset's last ``bars`` closes (at most ``VOLATILITY_BARS``) and the stdev of their returns, in percent."""

    bars: int
    realised_pct: float | None


def sample_stdev(values: Sequence[float]) -> float:
    """The sample standard deviation of two or more floats.

    ``statistics.stdev`` computes in exact fractions (~30 us for 20 returns); a dispatch measures
    every asset of a class, and a percentage needs no more than float arithmetic.
    """
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def stats_of(closes: Sequence[float]) -> BarStats:
    """The returns' stdev of ``closes`` (oldest first); None with fewer than two returns."""
    returns = [100 * (b / a - 1) for a, b in zip(closes, closes[1:], strict=False) if a > 0]
    realised = sample_stdev(returns) if len(returns) >= 2 else None
    return BarStats(len(closes), realised if realised is not None and math.isfinite(realised) else None)


def recent_bar_stats(
    at: datetime, *, scope: QuerySet[Asset] | None = None, ids: Sequence[int] = ()
) -> dict[int, BarStats]:
    """``BarStats`` of the last ``VOLATILITY_BARS`` bars at or before ``at`` of each asset in ``scope`` (a query
    of assets) or ``ids``; assets without bars are left out."""
    count, interval = settings.VOLATILITY_BARS, settings.VOLATILITY_INTERVAL
    # Twice the span the bars cover (weekends, holidays and gaps included) bounds the scan.
    since = at - 2 * count * _SPAN[interval]
    if connection.vendor == "postgresql":
        return _aggregate_in_postgresql(at, since, count, interval, scope, ids)
    return _read_and_reduce(at, since, count, interval, scope, ids)


def _read_and_reduce(
    at: datetime, since: datetime, count: int, interval: str, scope: QuerySet[Asset] | None, ids: Sequence[int]
) -> dict[int, BarStats]:
    among: Mapping[str, object] = {"asset__in": scope.values("pk")} if scope is not None else {"asset_id__in": ids}
    rows = (
        PriceBar.objects.filter(**among, interval=interval, timestamp__lte=at, timestamp__gt=since)
        .order_by("asset_id", "-timestamp")
        .values_list("asset_id", Cast("close", FloatField()))
    )
    closes: dict[int, list[float]] = defaultdict(list)
    for asset_id, close in rows:
        if len(closes[asset_id]) < count:
            closes[asset_id].append(close)
    return {asset_id: stats_of(values[::-1]) for asset_id, values in closes.items()}


def _aggregate_in_postgresql(
    at: datetime, since: datetime, count: int, interval: str, scope: QuerySet[Asset] | None, ids: Sequence[int]
) -> dict[int, BarStats]:
    """Per asset, its last ``count`` bars from the (asset, interval, timestamp) index, newest first, and the
    stdev of their returns: each bar against the next older one (the oldest has none, so NULL)."""
    if scope is not None:
        # Unordered: the assets' default order would sort the subquery for nothing.
        assets_sql, assets_params = scope.order_by().values("pk").query.sql_with_params()
        assets = f"({assets_sql}) AS a(id)"
    else:
        assets, assets_params = "unnest(%s::bigint[]) AS a(id)", (list(ids),)
    sql = f"""
        SELECT a.id, s.bars, s.realised
        FROM {assets}
        CROSS JOIN LATERAL (
            SELECT count(*) AS bars, stddev_samp(ret) AS realised
            FROM (
                SELECT 100 * (close / NULLIF(lead(close) OVER (ORDER BY timestamp DESC), 0) - 1) AS ret
                FROM (
                    SELECT timestamp, close::float8 AS close
                    FROM {PriceBar._meta.db_table}
                    WHERE asset_id = a.id AND interval = %s AND timestamp <= %s AND timestamp > %s
                    ORDER BY timestamp DESC
                    LIMIT %s
                ) newest
            ) returns
        ) s
        WHERE s.bars > 0
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*assets_params, interval, at, since, count])
        return {
            asset_id: BarStats(bars, realised if realised is not None and math.isfinite(realised) else None)
            for asset_id, bars, realised in cursor.fetchall()
        }
