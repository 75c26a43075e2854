"""The write path of market data: quotes, bars, indicator snapshots and articles, each an upsert on a
natural key.

A redelivered, retried or replayed task calls these again with the same input; upserts make that
harmless: no duplicate row, the latest value wins. The records come from the providers
(``backend.providers.models``: ``Quote``, ``Bar``, ``Article``); one that the store cannot hold, or
whose asset was deleted meanwhile, costs only itself (``upserts``). Loading the demo universe from its
JSON file is ``demo``'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from django.db import transaction
from django.utils import timezone

from backend.common.logsafe import escape
from backend.providers.models import Article, Bar
from backend.providers.models import Quote as QuoteRecord

from .indicators import INDICATOR_NAMES as INDICATOR_FIELDS
from .models import Asset, IndicatorSnapshot, NewsArticle, PriceBar, Quote, url_digest
from .upserts import UpsertTable, upsert

logger = logging.getLogger(__name__)


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
