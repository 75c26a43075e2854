"""Indicator refresh: plan chunks of every active asset, then compute one chunk vectorised.

A chunk loads the last N closes of all its assets in one query, computes every indicator with
TA-Lib, and upserts one snapshot per asset on (asset, interval, last bar time).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backend.market.indicators import INDICATOR_NAMES, IndicatorPeriods, compute_indicators
from backend.market.models import Asset, PriceBar
from backend.market.store import store_indicator_snapshots

logger = logging.getLogger(__name__)


def configured_periods() -> IndicatorPeriods:
    """Indicator periods from settings, read at use time."""
    return IndicatorPeriods(**settings.INDICATOR_PERIODS)


def plan_indicator_chunks(chunk_size: int) -> list[list[int]]:
    """Ids of every active asset (of every class), split into chunks of ``chunk_size``."""
    ids = list(Asset.objects.active().order_by("pk").values_list("pk", flat=True))
    return [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]


def load_closes(asset_ids: list[int], interval: str, bars: int) -> dict[int, tuple[np.ndarray, datetime]]:
    """The last ``bars`` closes of each asset, oldest first, and its last bar's time, in one query."""
    if not asset_ids:
        return {}
    if connection.vendor == "postgresql":
        return _load_closes_postgresql(asset_ids, interval, bars)
    placeholders = ", ".join(["%s"] * len(asset_ids))
    table = PriceBar._meta.db_table
    sql = (
        "SELECT asset_id, timestamp, CAST(close AS DOUBLE PRECISION) FROM ("
        "  SELECT asset_id, timestamp, close,"
        "         ROW_NUMBER() OVER (PARTITION BY asset_id ORDER BY timestamp DESC) AS recent"
        f"  FROM {table} WHERE interval = %s AND asset_id IN ({placeholders})"
        ") AS latest WHERE recent <= %s ORDER BY asset_id, timestamp"
    )
    grouped: dict[int, list[float]] = defaultdict(list)
    last: dict[int, object] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [interval, *asset_ids, bars])
        for asset_id, timestamp, close in cursor.fetchall():
            grouped[asset_id].append(close)
            last[asset_id] = timestamp  # rows come oldest first: the final one is the latest bar
    return {
        asset_id: (np.asarray(closes, dtype=np.float64), _aware(last[asset_id])) for asset_id, closes in grouped.items()
    }


def _load_closes_postgresql(asset_ids: list[int], interval: str, bars: int) -> dict[int, tuple[np.ndarray, datetime]]:
    """PostgreSQL: one row per asset (its closes as an array), each read from the bar index's newest end.

    The window-function form above numbers every bar of every asset and sends one row per bar; here
    the (asset, interval, timestamp) index gives each asset's last ``bars`` directly.
    """
    table = PriceBar._meta.db_table
    sql = (
        "SELECT a.id, recent.closes, recent.last_at FROM unnest(%s::bigint[]) AS a(id) CROSS JOIN LATERAL ("
        "  SELECT array_agg(close ORDER BY timestamp) AS closes, max(timestamp) AS last_at FROM ("
        f"    SELECT timestamp, CAST(close AS DOUBLE PRECISION) AS close FROM {table}"
        "     WHERE asset_id = a.id AND interval = %s ORDER BY timestamp DESC LIMIT %s"
        "  ) AS newest"
        ") AS recent WHERE recent.last_at IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(asset_ids), interval, bars])
        rows = cursor.fetchall()
    return {asset_id: (np.asarray(closes, dtype=np.float64), _aware(last)) for asset_id, closes, last in rows}


def _aware(value: object) -> datetime:
    """A raw cursor's timestamp as an aware UTC datetime (SQLite hands back text, PostgreSQL a datetime)."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class IndicatorSummary:
    """What one chunk computed, small enough to be a task result.

    Every asset of the chunk is stored, ``without_bars``, ``refused`` (bad data, or a snapshot the store
    cannot hold, with the reason) or ``gone`` (deleted while the chunk ran).
    """

    assets: int
    stored: int
    without_bars: list[int]
    refused: dict[int, str]
    gone: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def compute_indicator_chunk(asset_ids: list[int]) -> IndicatorSummary:
    """Compute and upsert indicators for a chunk of assets; an asset with bad data is refused alone."""
    interval = settings.INDICATOR_INTERVAL
    periods = configured_periods()
    closes = load_closes(asset_ids, interval, settings.INDICATOR_HISTORY_BARS)
    now = timezone.now()
    rows: list[tuple[object, ...]] = []
    refused: dict[int, str] = {}
    for asset_id, (series, last_bar) in closes.items():
        try:
            values = compute_indicators(series, periods)
        except ValueError as exc:
            refused[asset_id] = str(exc)[:200]
            logger.warning("indicators refused for asset %s: %s", asset_id, exc)
            continue
        # In SNAPSHOTS.columns order: key, the indicators, then bars used and when.
        indicators = (getattr(values, name) for name in INDICATOR_NAMES)
        rows.append((asset_id, interval, last_bar, *indicators, len(series), now))
    written = store_indicator_snapshots(rows)
    refused |= written.refused
    without_bars = sorted(set(asset_ids) - closes.keys())
    logger.info("computed indicators for %d of %d assets", written.written, len(asset_ids))
    return IndicatorSummary(
        assets=len(asset_ids),
        stored=written.written,
        without_bars=without_bars,
        refused=refused,
        gone=sorted(written.gone),
    )
