"""One odd record costs only itself: long URLs are stored whole, what the store cannot hold is refused
alone with a reason, never cut (issue 20, item 2). PostgreSQL is where the length limits are real."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from backend.market.models import NewsArticle, PriceBar, Quote, url_digest
from backend.market.store import ARTICLES, BARS, QUOTES, store_articles, store_bars, store_quotes
from backend.providers.models import Article, Bar
from backend.providers.models import Quote as QuoteRecord

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def long_url(length: int) -> str:
    """A news URL of ``length`` characters, like the tracking-laden ones real feeds carry."""
    head = "https://news.example.com/markets/2026/12/01/aapl-beats?utm_source=feed&ref="
    return head + "x" * (length - len(head))


def article(url: str, title: str = "AAPL rallies", **fields: object) -> Article:
    return Article(url=url, title=title, published_at=AT, source="newsapi", **fields)


def test_a_1412_character_url_is_stored_whole_beside_the_rest_of_its_page(make_asset) -> None:
    assets = {"AAPL": make_asset("AAPL")}
    page = [article("https://x/1"), article(long_url(1412)), article(long_url(2600), title="AAPL again")]

    stored = store_articles(page, assets)

    assert (stored.new, stored.links, stored.refused) == (3, 3, ())
    lengths = sorted(len(url) for url in NewsArticle.objects.values_list("url", flat=True))
    assert lengths == [len("https://x/1"), 1412, 2600]  # whole, never cut
    long_one = NewsArticle.objects.get(url_hash=url_digest(long_url(1412)))
    assert long_one.url == long_url(1412) and list(long_one.assets.values_list("symbol", flat=True)) == ["AAPL"]
    # The next run of the same window finds every article by its URL: nothing new, nothing doubled.
    again = store_articles(page, assets)
    assert (again.new, NewsArticle.objects.count()) == (0, 3)


def test_an_article_the_store_cannot_hold_is_refused_alone_with_the_reason(make_asset, caplog) -> None:
    assets = {"AAPL": make_asset("AAPL")}
    page = [
        article("https://x/good", "AAPL up"),
        article("https://x/long-title", "A" * 501),
        article("https://x/nul", "AAPL", summary="cut\x00here"),
        article("https://x/publisher", "AAPL", publisher="P" * 201),
    ]

    with caplog.at_level(logging.WARNING, logger="backend.market.store"):
        stored = store_articles(page, assets)

    assert list(NewsArticle.objects.values_list("url", flat=True)) == ["https://x/good"]
    assert (stored.new, stored.links) == (1, 1)
    assert sorted(stored.refused) == [
        "https://x/long-title: title is 501 characters, its column holds 500",
        "https://x/nul: summary holds a NUL character, which the database cannot store",
        "https://x/publisher: publisher is 201 characters, its column holds 200",
    ]
    assert caplog.text.count("article refused by the store") == 3


def test_text_is_never_cast_to_a_bounded_varchar_which_would_cut_it_silently() -> None:
    for table in (QUOTES, BARS, ARTICLES):
        assert "varchar(" not in table.postgresql_sql.lower()
    assert "::text" in ARTICLES.postgresql_sql


@pytest.mark.postgresql  # the one-JSON-parameter statement is PostgreSQL's; SQLite's columns have no length
def test_past_the_check_a_text_too_long_for_its_column_is_an_error_not_a_cut(make_asset) -> None:
    """Were a row to skip the length check, PostgreSQL itself refuses it: the statement never truncates."""
    from django.db import DataError

    from backend.market.upserts import _upsert_json

    aapl = make_asset("AAPL")
    row = (aapl.pk, Decimal("1"), None, None, "TOOLONGCUR", AT, "yahoo", AT)
    with connection.cursor() as cursor, pytest.raises(DataError, match="too long"):
        _upsert_json(cursor, QUOTES, [row])


def test_a_quote_whose_text_does_not_fit_is_refused_and_the_others_stored(make_asset) -> None:
    ids = {s: make_asset(s).pk for s in ("AAPL", "MSFT", "IBM")}
    quotes = [
        QuoteRecord("AAPL", Decimal("190.5"), AT, "yahoo"),
        QuoteRecord("MSFT", Decimal("410.25"), AT, "yahoo", currency="DOLLARSUS"),  # 9 > 8 characters
        QuoteRecord("IBM", Decimal("230"), AT, "a-provider-name-far-longer-than-32"),
    ]

    stored = store_quotes(ids, quotes)

    assert stored.written == 1 and stored.gone == frozenset()
    assert stored.refused == {
        "MSFT": "currency is 9 characters, its column holds 8",
        "IBM": "source is 34 characters, its column holds 32",
    }
    assert list(Quote.objects.values_list("asset__symbol", "currency")) == [("AAPL", "USD")]


def test_a_value_the_database_refuses_costs_only_its_own_row(make_asset, caplog) -> None:
    """A CHECK constraint and a numeric overflow among 12 quotes: the batch is halved down to those two."""
    symbols = [f"S{i:02d}" for i in range(12)]
    ids = {s: make_asset(s).pk for s in symbols}
    prices = {s: Decimal("10") for s in symbols} | {"S03": Decimal("5e12"), "S09": Decimal("5e16")}
    quotes = [QuoteRecord(s, prices[s], AT, "yahoo") for s in symbols]

    with caplog.at_level(logging.WARNING):
        stored = store_quotes(ids, quotes)

    assert stored.written == 10
    assert set(stored.refused) == {"S03", "S09"}
    assert "quote_price_finite_positive" in stored.refused["S03"]
    # 17 integer digits: past numeric(24, 8) on PostgreSQL; SQLite has no precision, its CHECK refuses it.
    overflow = "numeric field overflow" if connection.vendor == "postgresql" else "quote_price_finite_positive"
    assert overflow in stored.refused["S09"], stored.refused["S09"]
    assert Quote.objects.count() == 10 and not Quote.objects.filter(asset__symbol__in=["S03", "S09"]).exists()


def test_a_bar_the_database_refuses_leaves_the_rest_of_the_history(make_asset) -> None:
    aapl = make_asset("AAPL")
    one = Decimal("1")
    bars = [Bar("AAPL", "1d", AT - timedelta(days=d), one, one, one, one, one, "yahoo") for d in range(30)]
    bars[7] = Bar("AAPL", "1d", AT - timedelta(days=7), one, Decimal("0.5"), one, one, one, "yahoo")  # high < low

    stored = store_bars({"AAPL": aapl.pk}, bars)

    assert stored.written == 29
    assert "pricebar_high_low_envelope" in stored.refused["AAPL"]
    assert PriceBar.objects.filter(asset=aapl).count() == 29


def test_a_news_run_stores_its_page_and_counts_the_article_it_refused(make_asset, monkeypatch) -> None:
    from backend.tasks import news

    make_asset("AAPL")
    page = [article("https://x/1"), article(long_url(1412)), article("https://x/3", "A" * 600)]

    class Source:
        name = "newsapi"

        def fetch_articles(self, query: str, **options: object) -> list[Article]:
            return page

    monkeypatch.setattr(news, "news_source", Source)

    summary = news.refresh_news()

    assert (summary.fetched, summary.new, summary.links) == (3, 2, 2)
    assert summary.refused == ["https://x/3: title is 600 characters, its column holds 500"]
    assert summary.fetched == NewsArticle.objects.count() + len(summary.refused)


def test_a_snapshot_with_a_non_finite_value_is_refused_and_the_chunk_stored(make_asset) -> None:
    from backend.market.store import store_indicator_snapshots

    ids = [make_asset(s).pk for s in ("AAPL", "MSFT", "IBM")]
    values = {ids[0]: 50.0, ids[1]: float("nan"), ids[2]: float("inf")}
    rows = [(pk, "1d", AT, values[pk], *[None] * 8, 30, AT) for pk in ids]

    stored = store_indicator_snapshots(rows)

    assert stored.written == 1
    assert stored.refused == {ids[1]: "sma is nan, not a finite number", ids[2]: "sma is inf, not a finite number"}
