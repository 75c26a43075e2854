"""Bulk upserts on a natural key: values round-trip, the latest wins, a deleted asset's rows drop out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from backend.market.models import Asset, IndicatorSnapshot, NewsArticle, PriceBar, Quote
from backend.market.store import BARS, QUOTES, SNAPSHOTS, Stored, store_quotes
from backend.market.upserts import Upserted, UpsertTable, _upsert_json, _upsert_rows, upsert
from backend.providers.models import Quote as QuoteRecord

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def quote_row(asset: Asset, price: str, *, change: str | None = "1.5", at: datetime = AT) -> tuple[object, ...]:
    volume = Decimal("12345.678") if change else None
    return (asset.pk, Decimal(price), Decimal(change) if change else None, volume, "USD", at, "binance", at)


def test_values_round_trip_exactly(make_asset) -> None:
    btc = make_asset("BTC", "crypto")
    assert upsert(QUOTES, [quote_row(btc, "96512.34000001")]).written == 1
    quote = Quote.objects.get(asset=btc)
    assert quote.price == Decimal("96512.34000001")
    assert (quote.change_24h_pct, quote.volume_24h) == (Decimal("1.5"), Decimal("12345.678"))
    assert (quote.as_of, quote.fetched_at, quote.source, quote.currency) == (AT, AT, "binance", "USD")


def test_a_batch_sharing_datetimes_stores_each_row_its_own_instant(make_asset) -> None:
    """Datetimes repeat within a batch (formatted once); equal instants in other zones and distinct ones
    still land as their own instants."""
    from zoneinfo import ZoneInfo

    assets = [make_asset(symbol, "crypto") for symbol in ("BTC", "ETH", "SOL", "ADA")]
    same_instant = AT.astimezone(ZoneInfo("America/New_York"))
    times = [AT, AT, same_instant, AT + timedelta(seconds=1)]
    upsert(QUOTES, [quote_row(asset, "1", at=at) for asset, at in zip(assets, times, strict=True)])
    stored = dict(Quote.objects.values_list("asset__symbol", "as_of"))
    assert stored == {"BTC": AT, "ETH": AT, "SOL": AT, "ADA": AT + timedelta(seconds=1)}


def test_nulls_stay_null_and_a_conflict_updates_in_place(make_asset) -> None:
    btc = make_asset("BTC", "crypto")
    upsert(QUOTES, [quote_row(btc, "1")])
    first = Quote.objects.get(asset=btc).pk
    assert upsert(QUOTES, [quote_row(btc, "2", change=None, at=AT + timedelta(minutes=1))]).written == 1
    quote = Quote.objects.get(asset=btc)
    assert quote.pk == first and Quote.objects.count() == 1
    assert (quote.price, quote.change_24h_pct, quote.volume_24h) == (Decimal("2"), None, None)
    assert quote.as_of == AT + timedelta(minutes=1)


def test_the_last_row_of_a_key_within_one_call_wins(make_asset) -> None:
    btc, eth = make_asset("BTC", "crypto"), make_asset("ETH", "crypto")
    rows = [quote_row(btc, "1"), quote_row(eth, "5"), quote_row(btc, "3")]
    assert upsert(QUOTES, rows).written == 2
    assert dict(Quote.objects.values_list("asset__symbol", "price")) == {"BTC": Decimal("3"), "ETH": Decimal("5")}


def test_rows_of_a_deleted_asset_are_dropped_and_the_rest_written(make_asset, caplog) -> None:
    btc, eth = make_asset("BTC", "crypto"), make_asset("ETH", "crypto")
    ids = {"BTC": btc.pk, "ETH": eth.pk}
    eth.delete()  # an operator deleted it while its batch was being fetched
    quotes = [QuoteRecord(symbol, Decimal("10"), AT, "binance") for symbol in ids]
    with caplog.at_level(logging.INFO, logger="backend.market.store"):
        assert store_quotes(ids, quotes) == Stored(written=1, gone=frozenset({"ETH"}))
    assert list(Quote.objects.values_list("asset__symbol", flat=True)) == ["BTC"]
    assert "dropped 1 quotes of assets deleted while the task ran: ['ETH']" in caplog.text


def test_bars_and_snapshots_upsert_on_their_three_column_keys(make_asset) -> None:
    aapl = make_asset("AAPL")
    bar = (aapl.pk, "1d", AT, Decimal("10"), Decimal("12"), Decimal("9"), Decimal("11"), Decimal("1000"), "yahoo")
    next_day = (aapl.pk, "1d", AT + timedelta(days=1), *bar[3:])
    assert upsert(BARS, [bar, next_day]).written == 2
    assert upsert(BARS, [(*bar[:6], Decimal("11.5"), *bar[7:])]).written == 1
    assert list(PriceBar.objects.order_by("timestamp").values_list("close", flat=True)) == [Decimal("11.5"), 11]
    indicators = [1.25, None, 55.5, None, None, None, 1e-7, None, None]
    snapshot = (aapl.pk, "1d", AT, *indicators, 250, AT)
    assert upsert(SNAPSHOTS, [snapshot]).written == 1
    stored = IndicatorSnapshot.objects.get()
    assert (stored.sma, stored.ema, stored.rsi, stored.bb_upper, stored.bars_used) == (1.25, None, 55.5, 1e-7, 250)


def test_a_nan_is_refused_by_name_before_postgresql_sees_it(make_asset) -> None:
    aapl = make_asset("AAPL")
    snapshot = (aapl.pk, "1d", AT, float("nan"), *[None] * 8, 250, AT)
    with connection.cursor() as cursor, pytest.raises(ValueError, match="not JSON compliant"):
        _upsert_json(cursor, SNAPSHOTS, [snapshot])
    assert not IndicatorSnapshot.objects.exists()


def test_the_row_by_row_statement_gives_the_same_outcome(make_asset) -> None:
    """The statement the embedded SQLite default runs, checked here on the suite's database."""
    btc, eth = make_asset("BTC", "crypto"), make_asset("ETH", "crypto")
    ids = [btc.pk, eth.pk]
    eth.delete()
    with connection.cursor() as cursor:
        assert _upsert_rows(cursor, QUOTES, [quote_row(btc, "7"), (ids[1], *quote_row(btc, "8")[1:])]) == 1
    assert list(Quote.objects.values_list("asset_id", "price")) == [(btc.pk, Decimal("7"))]


def test_the_outcome_counts_distinct_keys_offered_and_rows_written(make_asset) -> None:
    btc, eth = make_asset("BTC", "crypto"), make_asset("ETH", "crypto")
    rows = [quote_row(btc, "1"), quote_row(eth, "2"), quote_row(btc, "3")]
    eth_id = eth.pk
    eth.delete()
    outcome = upsert(QUOTES, rows)
    assert (outcome.offered, outcome.written, outcome.dropped, outcome.gone) == (2, 1, 1, {eth_id})
    assert upsert(QUOTES, []) == Upserted(0, 0)


def test_a_table_without_an_owner_writes_every_row() -> None:
    articles = UpsertTable(
        NewsArticle,
        columns=("url", "url_hash", "title", "summary", "publisher", "published_at", "source", "fetched_at"),
        key=("url_hash",),
        update=("title",),
    )
    row = ("https://x/1", "h1", "first", "", "", AT, "newsapi", AT)
    assert upsert(articles, [row, ("https://x/2", "h2", *row[2:])]).written == 2
    assert upsert(articles, [(*row[:2], "renamed", *row[3:])]).written == 1
    assert dict(NewsArticle.objects.values_list("url", "title")) == {"https://x/1": "renamed", "https://x/2": "first"}


def test_a_table_naming_a_column_it_does_not_write_is_refused() -> None:
    with pytest.raises(ValueError, match="are not among the columns"):
        UpsertTable(Quote, columns=("asset_id", "price"), key=("asset_id",), update=("source",))
