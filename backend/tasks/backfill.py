"""History backfill: enough bars for the longest indicator, fetched for one asset."""

from __future__ import annotations

import logging

from django.conf import settings

from backend.market.indicators import warmup
from backend.market.models import Asset
from backend.market.store import store_bars
from backend.market.symbols import check_symbol

from .indicator_refresh import configured_periods
from .sources import quote_source

logger = logging.getLogger(__name__)


def bars_needed() -> int:
    """Bars to backfill: the configured history, and never less than the longest warm-up."""
    return max(settings.INDICATOR_HISTORY_BARS, *warmup(configured_periods()).values())


def backfill_asset(symbol: str, *, interval: str | None = None, bars: int | None = None) -> int:
    """Fetch and upsert the recent history of one active asset; returns how many bars were stored.

    ``InvalidInputError`` (before any query) when ``symbol`` is not a symbol at all.
    """
    symbol = check_symbol(symbol)
    asset = Asset.objects.refreshable().select_related("asset_type").filter(symbol=symbol).first()
    if asset is None:
        logger.info("backfill of %s skipped: no active, unquarantined asset with that symbol", symbol)
        return 0
    interval = interval or settings.INDICATOR_INTERVAL
    source = quote_source(asset.asset_type.code)
    history = source.fetch_asset_bars(asset, interval=interval, limit=bars or bars_needed())
    written = store_bars({symbol: asset.pk}, history)
    if written.gone:
        logger.info("backfill of %s stored nothing: the asset was deleted while its history was fetched", symbol)
        return 0
    logger.info("backfilled %d %s bars for %s from %s", written.written, interval, symbol, source.name)
    return written.written


def active_asset_id(symbol: str) -> int | None:
    """The id of the active asset ``symbol``, or None when there is none (deleted or paused meanwhile)."""
    return Asset.objects.filter(symbol=symbol, is_active=True).values_list("pk", flat=True).first()
