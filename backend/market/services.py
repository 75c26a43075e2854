"""Writes to market data, each an upsert on a natural key.

A redelivered, retried or replayed task calls these again with the same input;
upserts make that harmless: no duplicate row, the latest value wins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar, cast

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backend.common.logsafe import escape
from backend.providers.models import Article, Bar
from backend.providers.models import Quote as QuoteRecord

from .indicators import INDICATOR_NAMES as INDICATOR_FIELDS
from .models import PRICE_CEILING, Asset, AssetType, IndicatorSnapshot, NewsArticle, PriceBar, Quote, url_digest
from .symbols import InvalidInputError, check_asset_class, check_symbol, has_control_characters, shown
from .upserts import UpsertTable, upsert

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """What a load did with each row: created, updated, kept as it was, or refused (with reasons)."""

    created: int
    updated: int
    errors: tuple[str, ...]
    kept: int = 0


def load_assets(path: Path, *, update: bool = False) -> LoadResult:
    """Create the assets (and asset types) of a JSON data file that are not in the database yet.

    A row whose symbol exists is kept as the operator left it (paused, renamed, quarantined) unless
    ``update`` is set: then the file's values overwrite it, and a row that already matches the file is
    not saved again. Every row is checked before any query touches its values (a NUL byte would crash
    PostgreSQL), and a refused row never stops the rows after it.
    """
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path.name}: expected an object with 'asset_types' and 'assets'")
    errors: list[str] = []
    types = {}
    for row in data.get("asset_types", []):
        try:
            code, name = _asset_type_row(row)
        except InvalidInputError as exc:
            errors.append(f"asset type {exc}")
            continue
        store = AssetType.objects.update_or_create if update else AssetType.objects.get_or_create
        types[code], _ = store(code=code, defaults={"name": name})
    created = updated = kept = 0
    for row in data.get("assets", []):
        try:
            symbol, type_code, fields = _asset_row(row)
        except InvalidInputError as exc:
            errors.append(str(exc))
            continue
        asset_type = types.get(type_code) or AssetType.objects.filter(code=type_code).first()
        if asset_type is None:
            errors.append(f"{shown(symbol)}: unknown asset type {shown(type_code)}")
            continue
        existing = Asset.objects.filter(symbol=symbol).first()
        if existing is not None and not update:
            kept += 1
            continue
        asset = existing or Asset(symbol=symbol)
        before = _loaded_values(asset)
        asset.asset_type = asset_type
        for name, value in fields.items():
            setattr(asset, name, value)
        if existing is not None and _loaded_values(asset) == before:
            kept += 1
            continue
        try:
            asset.full_clean()
        except ValidationError as exc:
            errors.append(f"{shown(symbol)}: {'; '.join(exc.messages)}")
            continue
        asset.save()
        created += existing is None
        updated += existing is not None
    return LoadResult(created=created, updated=updated, errors=tuple(errors), kept=kept)


_TEXT_FIELDS = ("name", "exchange", "coingecko_id", "binance_symbol")


def _loaded_values(asset: Asset) -> dict[str, object]:
    """The fields of ``asset`` a data file sets, to tell whether an update changes anything."""
    return {"asset_type_id": asset.asset_type_id, "is_active": asset.is_active} | {
        name: getattr(asset, name) for name in _TEXT_FIELDS
    }


def _asset_type_row(row: object) -> tuple[str, str]:
    """(code, name) of an asset type row, or InvalidInputError naming what is wrong."""
    if not isinstance(row, dict):
        raise InvalidInputError(f"row {shown(row)} is not an object")
    code = check_asset_class(row.get("code"))
    return code, _plain_text(code, "name", row.get("name", code))


def _asset_row(row: object) -> tuple[str, str, dict[str, object]]:
    """(symbol, type code, other fields) of an asset row, checked before any query sees them."""
    if not isinstance(row, dict):
        raise InvalidInputError(f"row {shown(row)} is not an object")
    symbol = check_symbol(row.get("symbol"))
    try:
        type_code = check_asset_class(row.get("type"))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{shown(symbol)}: type {exc}") from None
    fields: dict[str, object] = {name: _plain_text(symbol, name, row.get(name, "")) for name in _TEXT_FIELDS}
    is_active = row.get("is_active", True)
    if not isinstance(is_active, bool):
        raise InvalidInputError(f"{shown(symbol)}: is_active must be true or false, not {shown(is_active)}")
    fields["is_active"] = is_active
    return symbol, type_code, fields


def _plain_text(symbol: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{shown(symbol)}: {field} must be text, not {shown(value)}")
    if has_control_characters(value):
        raise InvalidInputError(f"{shown(symbol)}: {field} {shown(value)} holds control characters")
    return value


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


QUOTES = UpsertTable(
    Quote,
    columns=("asset_id", "price", "change_24h_pct", "volume_24h", "currency", "as_of", "source", "fetched_at"),
    key=("asset_id",),
    update=("price", "change_24h_pct", "volume_24h", "currency", "as_of", "source", "fetched_at"),
    owner="asset_id",
)
BARS = UpsertTable(
    PriceBar,
    columns=("asset_id", "interval", "timestamp", "open", "high", "low", "close", "volume", "source"),
    key=("asset_id", "interval", "timestamp"),
    update=("open", "high", "low", "close", "volume", "source"),
    owner="asset_id",
)
SNAPSHOTS = UpsertTable(
    IndicatorSnapshot,
    columns=("asset_id", "interval", "as_of", *INDICATOR_FIELDS, "bars_used", "computed_at"),
    key=("asset_id", "interval", "as_of"),
    update=(*INDICATOR_FIELDS, "bars_used", "computed_at"),
    owner="asset_id",
)
ARTICLES = UpsertTable(
    NewsArticle,
    columns=("url", "url_hash", "title", "summary", "publisher", "published_at", "source", "fetched_at"),
    key=("url_hash",),
    update=("title", "summary", "publisher", "published_at", "source"),
)
ARTICLE_LINKS = UpsertTable(
    NewsArticle.assets.through,
    columns=("newsarticle_id", "asset_id"),
    key=("newsarticle_id", "asset_id"),
    update=(),
    owner="asset_id",
)


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Stored(Generic[K]):
    """What one write did, per asset (a symbol, or an id where the caller has no symbols).

    ``written`` rows; ``refused``: asset -> why the store could not hold its row (the first reason when
    it had several rows); ``gone``: assets deleted while the task ran, whose rows were not written.
    """

    written: int
    refused: Mapping[K, str] = field(default_factory=dict)
    gone: frozenset[K] = frozenset()


def store_quotes(asset_ids: Mapping[str, int], quotes: Iterable[QuoteRecord]) -> Stored[str]:
    """Upsert the latest quote of each asset (``asset_ids``: symbol -> asset id), outcomes by symbol.

    A quote of an asset deleted meanwhile, or one the store cannot hold, costs only itself.
    """
    now = timezone.now()
    rows = [
        (asset_ids[q.symbol], q.price, q.change_24h_pct, q.volume_24h, q.currency, q.timestamp, q.source, now)
        for q in quotes
        if q.symbol in asset_ids
    ]
    return _written(QUOTES, rows, "quotes", _symbols_of(asset_ids))


def store_bars(asset_ids: Mapping[str, int], bars: Iterable[Bar]) -> Stored[str]:
    """Upsert bars on (asset, interval, timestamp) (``asset_ids``: symbol -> asset id), outcomes by symbol."""
    rows = [
        (asset_ids[b.symbol], b.interval, b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.source)
        for b in bars
        if b.symbol in asset_ids
    ]
    return _written(BARS, rows, "bars", _symbols_of(asset_ids))


def store_indicator_snapshots(rows: Iterable[Sequence[object]]) -> Stored[int]:
    """Upsert indicator snapshots, tuples in ``SNAPSHOTS.columns`` order; outcomes by asset id."""
    return _written(
        SNAPSHOTS, [tuple(row) for row in rows], "indicator snapshots", lambda asset_id: cast(int, asset_id)
    )


def _symbols_of(asset_ids: Mapping[str, int]) -> Callable[[object], str]:
    by_id: dict[object, str] = {pk: symbol for symbol, pk in asset_ids.items()}
    return by_id.__getitem__


def _written(table: UpsertTable, rows: list[tuple[object, ...]], what: str, label: Callable[[object], K]) -> Stored[K]:
    """Upsert ``rows``; says which assets were deleted meanwhile and which rows the store refused, and why."""
    outcome = upsert(table, rows)
    owner_at = table.owner_at if table.owner_at is not None else 0
    refused: dict[K, str] = {}
    for refusal in outcome.refused:
        refused.setdefault(label(refusal.row[owner_at]), refusal.reason)
    gone = frozenset(label(owner) for owner in outcome.gone)
    if gone:
        logger.info(
            "dropped %d %s of assets deleted while the task ran: %s", outcome.dropped, what, sorted(map(str, gone))
        )
    for asset, reason in sorted(refused.items(), key=lambda item: str(item[0])):
        logger.warning("%s of %s refused by the store: %s", what, escape(asset), reason)
    return Stored(outcome.written, refused, gone)


@dataclass(frozen=True)
class ArticlesStored:
    """What one page of articles did: ``new`` articles, ``links`` to assets, and one line per article
    the store refused (its URL as shown and why)."""

    new: int
    links: int
    refused: tuple[str, ...] = ()


def store_articles(articles: Iterable[Article], symbols_known: Mapping[str, Asset]) -> ArticlesStored:
    """Upsert articles by URL (stored whole) and link each to the known assets it mentions.

    An article the store cannot hold (a title longer than its column, a NUL) is refused alone, with the
    reason; a link to an asset deleted meanwhile is dropped. The rest of the page is stored.
    """
    articles = list({a.url: a for a in articles}.values())  # one provider page can repeat a URL
    digests = {a.url: url_digest(a.url) for a in articles}
    existing = set(NewsArticle.objects.filter(url_hash__in=digests.values()).values_list("url_hash", flat=True))
    now = timezone.now()
    rows = [(a.url, digests[a.url], a.title, a.summary, a.publisher, a.published_at, a.source, now) for a in articles]
    with transaction.atomic():
        outcome = upsert(ARTICLES, rows)
        refused = {refusal.row[1] for refusal in outcome.refused}
        kept = [digest for digest in digests.values() if digest not in refused]
        ids = dict(NewsArticle.objects.filter(url_hash__in=kept).values_list("url_hash", "pk"))
        links = [
            (ids[digests[a.url]], symbols_known[symbol].pk)
            for a in articles
            if digests[a.url] in ids
            for symbol in mentioned_symbols(a, symbols_known)
        ]
        linked = upsert(ARTICLE_LINKS, links)
    reasons = tuple(f"{_shown_url(str(refusal.row[0]))}: {refusal.reason}" for refusal in outcome.refused)
    for reason in reasons:
        logger.warning("article refused by the store: %s", reason)
    return ArticlesStored(
        new=len(set(ids) - existing),
        links=sum(1 for _, asset_id in links if asset_id not in linked.gone),
        refused=reasons,
    )


def _shown_url(url: str) -> str:
    """A URL for a log line or a reason: escaped, and only its start when long (with its length)."""
    if len(url) <= 120:
        return escape(url)
    return f"{escape(url[:100])}... ({len(url)} characters)"


def mentioned_symbols(article: Article, symbols_known: Mapping[str, Asset]) -> set[str]:
    """Symbols the provider tagged plus known symbols written as whole words (or $AAPL) in the title."""
    words = {word.strip("$.,:;!?()'\"").upper() for word in article.title.split()}
    # Single letters (V, MA?) are too ambiguous in free text; trust the provider's tags for those.
    found = {w for w in words if len(w) > 1 and w in symbols_known}
    return found | {s for s in article.symbols if s in symbols_known}
