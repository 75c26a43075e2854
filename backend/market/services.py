"""Writes to market data, each an upsert on a natural key.

A redelivered, retried or replayed task calls these again with the same input;
upserts make that harmless: no duplicate row, the latest value wins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from backend.providers.models import Article, Bar
from backend.providers.models import Quote as QuoteRecord

from .indicators import INDICATOR_NAMES as INDICATOR_FIELDS
from .models import PRICE_CEILING, Asset, AssetType, IndicatorSnapshot, NewsArticle, PriceBar, Quote

logger = logging.getLogger(__name__)

_QUOTE_FIELDS = ["price", "change_24h_pct", "volume_24h", "currency", "as_of", "source", "fetched_at"]
_BAR_FIELDS = ["open", "high", "low", "close", "volume", "source"]


@dataclass(frozen=True)
class LoadResult:
    """How many assets a load created, updated or refused (with reasons)."""

    created: int
    updated: int
    errors: tuple[str, ...]


def load_assets(path: Path) -> LoadResult:
    """Create or update asset types and assets from a JSON data file; bad rows are reported, not stored."""
    data = json.loads(path.read_text())
    types = {}
    for row in data.get("asset_types", []):
        types[row["code"]], _ = AssetType.objects.update_or_create(code=row["code"], defaults={"name": row["name"]})
    created = updated = 0
    errors: list[str] = []
    for row in data.get("assets", []):
        symbol = str(row.get("symbol", ""))
        asset_type = types.get(row.get("type")) or AssetType.objects.filter(code=row.get("type")).first()
        if asset_type is None:
            errors.append(f"{symbol!r}: unknown asset type {row.get('type')!r}")
            continue
        asset = Asset.objects.filter(symbol=symbol).first() or Asset(symbol=symbol)
        is_new = asset.pk is None
        asset.name = row.get("name", "")
        asset.asset_type = asset_type
        asset.exchange = row.get("exchange", "")
        asset.coingecko_id = row.get("coingecko_id", "")
        asset.binance_symbol = row.get("binance_symbol", "")
        asset.is_active = row.get("is_active", True)
        try:
            asset.full_clean()
        except ValidationError as exc:
            errors.append(f"{symbol!r}: {'; '.join(exc.messages)}")
            continue
        asset.save()
        created += is_new
        updated += not is_new
    return LoadResult(created=created, updated=updated, errors=tuple(errors))


def reference_prices(path: Path) -> dict[str, float]:
    """Each asset's optional ``reference_price`` in an asset data file: the level simulated prices start from.

    A missing file or a missing, non-numeric or non-positive price gives no entry (the simulated
    provider then derives a level from the symbol); the file's assets themselves are load_assets' job.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    prices: dict[str, float] = {}
    for row in data.get("assets", []):
        price = row.get("reference_price")
        # bool is an int to Python; a price of `true` is a typo, not 1.0.
        if isinstance(price, int | float) and not isinstance(price, bool) and 0 < price < float(PRICE_CEILING):
            prices[str(row.get("symbol", ""))] = float(price)
    return prices


def store_quotes(assets_by_symbol: Mapping[str, Asset], quotes: Iterable[QuoteRecord]) -> int:
    """Upsert the latest quote of each asset; returns how many rows were written."""
    now = timezone.now()
    rows = [
        Quote(
            asset=assets_by_symbol[q.symbol],
            price=q.price,
            change_24h_pct=q.change_24h_pct,
            volume_24h=q.volume_24h,
            currency=q.currency,
            as_of=q.timestamp,
            source=q.source,
            fetched_at=now,
        )
        for q in quotes
        if q.symbol in assets_by_symbol
    ]
    return _upsert(Quote, rows, key=["asset"], update=_QUOTE_FIELDS)


def store_bars(assets_by_symbol: Mapping[str, Asset], bars: Iterable[Bar]) -> int:
    """Upsert bars on (asset, interval, timestamp); returns how many rows were written."""
    rows = [
        PriceBar(
            asset=assets_by_symbol[b.symbol],
            interval=b.interval,
            timestamp=b.timestamp,
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=b.volume,
            source=b.source,
        )
        for b in bars
        if b.symbol in assets_by_symbol
    ]
    return _upsert(PriceBar, rows, key=["asset", "interval", "timestamp"], update=_BAR_FIELDS)


def store_articles(articles: Iterable[Article], symbols_known: Mapping[str, Asset]) -> tuple[int, int]:
    """Upsert articles by URL and link each to the known assets it mentions; returns (new, links)."""
    articles = list({a.url: a for a in articles}.values())  # one provider page can repeat a URL
    existing = set(NewsArticle.objects.filter(url__in=[a.url for a in articles]).values_list("url", flat=True))
    rows = [
        NewsArticle(
            url=a.url,
            title=a.title[:500],
            summary=a.summary,
            publisher=a.publisher[:200],
            published_at=a.published_at,
            source=a.source,
        )
        for a in articles
    ]
    with transaction.atomic():
        _upsert(NewsArticle, rows, key=["url"], update=["title", "summary", "publisher", "published_at", "source"])
        # The upsert fills in each row's primary key (RETURNING), new or existing.
        ids = {row.url: row.pk for row in rows}
        through = NewsArticle.assets.through
        links = [
            through(newsarticle_id=ids[a.url], asset_id=symbols_known[symbol].pk)
            for a in articles
            for symbol in mentioned_symbols(a, symbols_known)
        ]
        through.objects.bulk_create(links, ignore_conflicts=True)
    return len(set(ids) - existing), len(links)


def mentioned_symbols(article: Article, symbols_known: Mapping[str, Asset]) -> set[str]:
    """Symbols the provider tagged plus known symbols written as whole words (or $AAPL) in the title."""
    words = {word.strip("$.,:;!?()'\"").upper() for word in article.title.split()}
    # Single letters (V, MA?) are too ambiguous in free text; trust the provider's tags for those.
    found = {w for w in words if len(w) > 1 and w in symbols_known}
    return found | {s for s in article.symbols if s in symbols_known}


def store_indicator_snapshots(rows: Iterable[IndicatorSnapshot]) -> int:
    """Upsert indicator snapshots on (asset, interval, as_of); returns how many were written."""
    return _upsert(
        IndicatorSnapshot,
        list(rows),
        key=["asset", "interval", "as_of"],
        update=[*INDICATOR_FIELDS, "bars_used", "computed_at"],
    )


def _upsert(model: type[Model], rows: list[Model], *, key: list[str], update: list[str]) -> int:
    """Insert ``rows``, updating ``update`` where the natural ``key`` exists; returns how many were written.

    One statement per thousand rows, in one transaction: a batch lands whole or not at all.
    """
    with transaction.atomic():
        model.objects.bulk_create(rows, update_conflicts=True, unique_fields=key, update_fields=update, batch_size=1000)
    return len(rows)
