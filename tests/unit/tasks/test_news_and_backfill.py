"""News is deduplicated by URL and linked to assets; backfill stores enough history; activation triggers it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.market.models import NewsArticle, PriceBar
from backend.market.store import mentioned_symbols, store_articles
from backend.providers.models import Article
from backend.tasks import tasks
from backend.tasks.backfill import backfill_asset, bars_needed
from backend.tasks.news import refresh_news

pytestmark = pytest.mark.django_db
T = datetime(2026, 11, 27, 9, tzinfo=UTC)


def article(url: str, title: str, symbols: tuple[str, ...] = ()) -> Article:
    return Article(url=url, title=title, published_at=T, source="test", symbols=symbols)


def test_articles_are_upserted_by_url_and_linked_to_named_assets(make_asset) -> None:
    assets = {s: make_asset(s) for s in ("AAPL", "MSFT", "V")}
    new = store_articles(
        [
            article("https://x/1", "AAPL and $MSFT rally"),
            article("https://x/1", "AAPL and $MSFT rally (updated)"),
            article("https://x/2", "Visa beats", symbols=("V",)),
        ],
        assets,
    ).new
    assert new == 2
    assert NewsArticle.objects.count() == 2
    one = NewsArticle.objects.get(url="https://x/1")
    assert one.title.endswith("(updated)")
    assert set(one.assets.values_list("symbol", flat=True)) == {"AAPL", "MSFT"}
    assert list(NewsArticle.objects.get(url="https://x/2").assets.values_list("symbol", flat=True)) == ["V"]
    again = store_articles([article("https://x/1", "AAPL and $MSFT rally")], assets)
    assert (again.new, again.links, again.refused) == (0, 2, ()) and NewsArticle.objects.count() == 2


def test_a_one_letter_symbol_in_free_text_is_not_a_mention(make_asset) -> None:
    assets = {"V": make_asset("V")}
    assert mentioned_symbols(article("https://x/3", "V shaped recovery"), assets) == set()


def test_refresh_news_asks_about_active_assets_and_stores_the_articles(make_asset) -> None:
    make_asset("AAPL")
    make_asset("BTC", "crypto")
    make_asset("IBM", is_active=False)
    summary = refresh_news()
    assert summary.query_symbols == 2
    symbols = set(NewsArticle.objects.values_list("assets__symbol", flat=True))
    assert symbols == {"AAPL", "BTC"}


def test_backfill_stores_at_least_the_longest_warm_up(make_asset) -> None:
    make_asset("AAPL")
    stored = backfill_asset("AAPL")
    assert stored == bars_needed() >= 34
    assert PriceBar.objects.filter(asset__symbol="AAPL", interval="1d").count() == stored
    assert backfill_asset("AAPL") == stored  # upserts: nothing doubles
    assert PriceBar.objects.filter(asset__symbol="AAPL").count() == stored


def test_backfill_of_an_inactive_asset_does_nothing(make_asset) -> None:
    make_asset("IBM", is_active=False)
    assert backfill_asset("IBM") == 0


def test_adding_or_reactivating_an_asset_queues_a_backfill(
    make_asset, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    queued: list[str] = []
    monkeypatch.setattr(tasks, "enqueue_backfill", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        asset = make_asset("NVDA")
    with django_capture_on_commit_callbacks(execute=True):
        asset.name = "renamed"
        asset.save()
    with django_capture_on_commit_callbacks(execute=True):
        asset.is_active = False
        asset.save()
    with django_capture_on_commit_callbacks(execute=True):
        asset.is_active = True
        asset.save()
    assert queued == ["NVDA", "NVDA"]


def test_the_simulated_running_daily_bar_closes_at_the_quote() -> None:
    from backend.providers.simulated import SimulatedClient

    batch = SimulatedClient().fetch_quotes(["AAPL", "BTC"])
    for quote, bar in zip(batch.quotes, batch.bars, strict=True):
        assert bar.close == quote.price
        assert bar.low <= quote.price <= bar.high


def test_a_backfill_that_stored_bars_queues_indicators_for_that_asset(make_asset, monkeypatch) -> None:
    asset = make_asset("AAPL")
    sent: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(tasks.compute_indicators, "apply_async", lambda args, **options: sent.append((args, options)))
    result = tasks.backfill_history.run("AAPL")
    assert result["stored_bars"] == bars_needed() and result["indicators_queued"] is True
    ((args, options),) = sent
    assert args == ([asset.pk],)
    # Where routing sends indicator work, like the hourly fan-out.
    assert options == tasks.route_for(tasks.WorkKind.INDICATORS).as_options()


def test_a_backfill_that_stored_nothing_queues_nothing(make_asset, monkeypatch) -> None:
    make_asset("IBM", is_active=False)
    sent: list[object] = []
    monkeypatch.setattr(tasks.compute_indicators, "apply_async", lambda *a, **k: sent.append(a))
    assert tasks.backfill_history.run("IBM")["indicators_queued"] is False
    assert sent == []


def test_the_queued_compute_stores_a_snapshot_from_the_backfilled_bars(make_asset) -> None:
    from backend.market.models import IndicatorSnapshot

    asset = make_asset("BTC", "crypto")
    backfill_asset("BTC")
    tasks.compute_indicators.run([asset.pk])
    snapshot = IndicatorSnapshot.objects.get(asset=asset)
    assert snapshot.bars_used >= 34 and snapshot.rsi is not None and snapshot.macd is not None
