"""News refresh: one provider query per run, articles upserted by URL and linked to assets."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backend.market.models import Asset, NewsArticle
from backend.market.store import store_articles

from .sources import news_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewsSummary:
    """What one news refresh did: of the ``fetched`` articles, all were stored but the ``refused`` ones
    (one line each: the URL as shown and why the store could not hold it)."""

    query_symbols: int
    fetched: int
    new: int
    links: int
    source: str
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def news_query(symbols: list[str]) -> str:
    """A boolean query naming each symbol, the shape NewsAPI's ``q`` accepts."""
    return " OR ".join(symbols)


def refresh_news() -> NewsSummary:
    """Fetch articles about the active assets published since the newest stored one, and store them."""
    assets = {a.symbol: a for a in Asset.objects.active()}
    # The query length is bounded by the provider; rotate through the universe hour by hour so
    # every asset is asked about over a day even when it does not fit in one query.
    symbols = sorted(assets)
    size = max(1, settings.NEWS_QUERY_SYMBOLS)
    if len(symbols) > size:
        offset = (timezone.now().hour * size) % len(symbols)
        symbols = (symbols[offset:] + symbols[:offset])[:size]
    if not symbols:
        return NewsSummary(query_symbols=0, fetched=0, new=0, links=0, source="")
    newest = NewsArticle.objects.order_by("-published_at").values_list("published_at", flat=True).first()
    since = newest - timedelta(hours=1) if newest else timezone.now() - timedelta(days=2)
    source = news_source()
    articles = source.fetch_articles(news_query(symbols), since=since)
    stored = store_articles(articles, assets)
    logger.info(
        "stored %d new articles (%d fetched, %d refused, %d asset links) from %s",
        stored.new,
        len(articles),
        len(stored.refused),
        stored.links,
        source.name,
    )
    return NewsSummary(
        query_symbols=len(symbols),
        fetched=len(articles),
        new=stored.new,
        links=stored.links,
        source=source.name,
        refused=list(stored.refused),
    )
