"""Quote refresh: plan provider-sized batches per asset class, then fetch and store one batch."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from backend.market.models import Asset
from backend.market.services import store_bars, store_quotes
from backend.market.symbols import check_asset_class, check_symbols

from .sources import quote_source

logger = logging.getLogger(__name__)


def plan_quote_batches(asset_class: str, batch_size: int) -> list[list[str]]:
    """Symbols of every active asset of ``asset_class``, split into batches of ``batch_size``."""
    assets = Asset.objects.refreshable().of_class(asset_class)
    symbols = list(assets.order_by("symbol").values_list("symbol", flat=True))
    return [symbols[i : i + batch_size] for i in range(0, len(symbols), batch_size)]


@dataclass(frozen=True)
class RefreshSummary:
    """What one batch refresh did, small enough to be a task result."""

    asset_class: str
    requested: int
    stored_quotes: int
    stored_bars: int
    rejected: dict[str, str]
    skipped: list[str]
    source: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def refresh_quotes(asset_class: str, symbols: list[str]) -> RefreshSummary:
    """Fetch quotes for one batch and upsert them; unknown, inactive, quarantined or other-class symbols are skipped.

    ``InvalidInputError`` before any query when the input is not an asset class and a list of symbols.
    """
    asset_class, symbols = check_asset_class(asset_class), check_symbols(symbols)
    assets = {
        a.symbol: a
        for a in Asset.objects.refreshable().of_class(asset_class).filter(symbol__in=symbols).select_related()
    }
    skipped = sorted(set(symbols) - assets.keys())
    if skipped:
        logger.warning("skipping %d symbols not refreshable in class %s: %s", len(skipped), asset_class, skipped[:10])
    source = quote_source(asset_class)
    batch = source.fetch_asset_quotes([assets[symbol] for symbol in sorted(assets)])
    for rejected in batch.rejected:
        logger.warning("provider %s rejected %s: %s", source.name, rejected.symbol, rejected.reason)
    stored_quotes = store_quotes(assets, batch.quotes)
    stored_bars = store_bars(assets, batch.bars)
    logger.info("stored %d quotes and %d bars for %s from %s", stored_quotes, stored_bars, asset_class, source.name)
    return RefreshSummary(
        asset_class=asset_class,
        requested=len(symbols),
        stored_quotes=stored_quotes,
        stored_bars=stored_bars,
        rejected={r.symbol: r.reason for r in batch.rejected},
        skipped=skipped,
        # Which providers really served (the chain fails over per symbol), not the chain's name.
        source=",".join(sorted({q.source for q in batch.quotes})) or source.name,
    )
