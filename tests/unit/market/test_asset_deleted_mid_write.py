"""An asset deleted while its batch is being written is "gone"; the rest of the batch is stored (issue 20, item 3).

The delete is real and concurrent: a second connection deletes the asset as the admin does and
commits WHILE the upsert statement waits on the rows it deleted (tests/fixtures/concurrent_delete.py).
Before the fix the statement failed its foreign key: IntegrityError for the whole batch, not retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from backend.market.models import Asset, IndicatorSnapshot, NewsArticle, PriceBar, Quote
from backend.market.store import store_articles, store_bars, store_indicator_snapshots, store_quotes
from backend.providers.models import Article, Bar, QuoteBatch
from backend.providers.models import Quote as QuoteRecord
from backend.providers.orchestrator import Instrument
from backend.tasks import quotes
from backend.tasks.sources import AssetSource
from tests.fixtures.concurrent_delete import deleted_mid_statement

# PostgreSQL's row locks let the delete land mid-statement (and pg_stat_activity shows the statement
# waiting); SQLite locks the whole file, so a concurrent delete there comes before or after a statement.
pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

AT = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
SYMBOLS = [f"S{i:02d}" for i in range(12)]
VICTIM = "S05"


@pytest.fixture(autouse=True)
def no_backfills(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The assets these tests create queue no backfill: committed (the deletes are concurrent), each would
    reach a session worker still running from an integration test and write its history among the rows
    counted here."""
    from backend.tasks import tasks

    queued: list[str] = []
    monkeypatch.setattr(tasks, "enqueue_backfill", queued.append)
    return queued


@pytest.fixture
def twelve(make_asset) -> dict[str, int]:
    return {symbol: make_asset(symbol).pk for symbol in SYMBOLS}


def quote_records(price: str = "10") -> list[QuoteRecord]:
    return [QuoteRecord(s, Decimal(price), AT, "yahoo") for s in SYMBOLS]


@pytest.mark.parametrize("had_a_quote", [True, False], ids=["updating-its-quote", "first-quote"])
@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "inside-a-transaction"])
def test_a_quote_upsert_stores_the_live_assets_and_reports_the_one_deleted_meanwhile(
    twelve: dict[str, int], had_a_quote: bool, in_transaction: bool
) -> None:
    if had_a_quote:
        store_quotes(twelve, quote_records("9"))

    with deleted_mid_statement(twelve[VICTIM]) as delete:
        if in_transaction:
            with transaction.atomic():
                stored = store_quotes(twelve, quote_records())
        else:
            stored = store_quotes(twelve, quote_records())

    assert delete.held_up_a_statement, "the delete committed before the upsert reached its rows"
    assert (stored.written, stored.gone, stored.refused) == (11, frozenset({VICTIM}), {})
    prices = dict(Quote.objects.values_list("asset__symbol", "price"))
    assert prices == {s: Decimal("10") for s in SYMBOLS if s != VICTIM}
    assert not Asset.objects.filter(symbol=VICTIM).exists()


def test_bars_and_snapshots_of_an_asset_deleted_meanwhile_are_gone_and_the_rest_stored(
    twelve: dict[str, int],
) -> None:
    one = Decimal("1")
    bars = [Bar(s, "1d", AT - timedelta(days=d), one, one, one, one, one, "yahoo") for s in SYMBOLS for d in range(5)]
    store_bars(twelve, bars)
    snapshots = [(pk, "1d", AT, *[50.0] * 9, 5, AT) for pk in twelve.values()]

    with deleted_mid_statement(twelve[VICTIM]) as delete:
        stored_bars = store_bars(twelve, bars)
    with deleted_mid_statement(twelve["S07"]) as second:
        stored_snapshots = store_indicator_snapshots(snapshots)

    assert delete.held_up_a_statement and second.held_up_a_statement
    assert (stored_bars.written, stored_bars.gone) == (55, frozenset({VICTIM}))
    # The snapshots still name the asset deleted before the statement (left out by it) and the one deleted during it.
    assert (stored_snapshots.written, stored_snapshots.gone) == (10, frozenset({twelve[VICTIM], twelve["S07"]}))
    assert PriceBar.objects.count() == 50 and IndicatorSnapshot.objects.count() == 10


def test_news_links_to_an_asset_deleted_meanwhile_are_dropped_and_the_page_kept(twelve: dict[str, int]) -> None:
    assets = {a.symbol: a for a in Asset.objects.all()}
    page = [Article(url=f"https://x/{s}", title=f"{s} {VICTIM} move", published_at=AT, source="t") for s in SYMBOLS]
    store_articles(page[:1], assets)  # a first link to the victim exists: the delete cascades over it

    with deleted_mid_statement(twelve[VICTIM]) as delete:
        stored = store_articles(page, assets)

    assert delete.held_up_a_statement
    # 23 links offered (each article to its own symbol and to the victim's); the 12 to the victim dropped.
    assert (stored.new, stored.links, stored.refused) == (11, 11, ())
    assert NewsArticle.objects.count() == 12  # the victim's own article too, without links
    links = set(NewsArticle.assets.through.objects.values_list("newsarticle__url", "asset__symbol"))
    assert links == {(f"https://x/{s}", s) for s in SYMBOLS if s != VICTIM}


class ServingChain:
    """A provider chain that serves every symbol asked for."""

    name = "scripted"

    def __init__(self) -> None:
        self.deletes: list = []

    def fetch_quotes(self, instruments: Sequence[Instrument]) -> QuoteBatch:
        symbols = [i.symbol for i in instruments]
        return QuoteBatch(quotes=tuple(QuoteRecord(s, Decimal("10"), datetime.now(UTC), "yahoo") for s in symbols))


def test_a_refresh_counts_the_deleted_asset_as_gone_and_stores_the_other_eleven(
    twelve: dict[str, int], monkeypatch
) -> None:
    chain = ServingChain()
    monkeypatch.setattr(quotes, "quote_source", lambda asset_class: AssetSource(asset_class, chain, chain))
    store_quotes(twelve, quote_records("9"))  # the upsert will wait on the victim's quote row

    # The batch has read its assets and fetched; the operator's delete lands while the upsert runs.
    real_store = quotes.store_quotes

    def store_during_a_delete(ids, records):
        with deleted_mid_statement(twelve[VICTIM]) as delete:
            chain.deletes.append(delete)
            return real_store(ids, records)

    monkeypatch.setattr(quotes, "store_quotes", store_during_a_delete)
    summary = quotes.refresh_quotes("stock", SYMBOLS)

    assert chain.deletes[0].held_up_a_statement
    assert summary.gone == [VICTIM]
    assert summary.stored == [s for s in SYMBOLS if s != VICTIM]
    assert summary.failed == {} and summary.rejected == {} and summary.skipped == []
    outcomes = [*summary.stored, *summary.gone]
    assert sorted(outcomes) == SYMBOLS  # every requested symbol accounted for, once
    assert connection.vendor == "postgresql"
