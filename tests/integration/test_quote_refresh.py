"""The main job end to end: a dispatch per asset class, through a real worker, into the database."""

from __future__ import annotations

import pytest
from django_celery_results.models import TaskResult

from backend.market.models import Quote
from backend.tasks.models import DispatchRun
from backend.tasks.tasks import dispatch_quotes, fetch_quotes
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_dispatching_each_class_stores_quotes_only_for_that_class(live_worker, make_asset) -> None:
    stocks = {make_asset(s, "stock").pk for s in ("AAPL", "MSFT", "BRK.B")}
    cryptos = {make_asset(s, "crypto").pk for s in ("BTC", "ETH")}
    make_asset("IBM", "stock", is_active=False)

    result = dispatch_quotes.delay("stock").get(timeout=30)

    assert (result["batches"], result["assets"]) == (1, 3)
    assert wait_for(lambda: Quote.objects.count() == 3), live_worker.log()[-2000:]
    assert set(Quote.objects.values_list("asset_id", flat=True)) == stocks

    dispatch_quotes.delay("crypto").get(timeout=30)
    assert wait_for(lambda: Quote.objects.count() == 5), live_worker.log()[-2000:]
    assert set(Quote.objects.values_list("asset_id", flat=True)) == stocks | cryptos
    # The real clients served them, through the fake provider server: the first provider of each chain.
    assert set(Quote.objects.values_list("source", flat=True)) == {"yahoo", "binance"}


def test_a_redelivered_fetch_updates_rows_instead_of_duplicating_them(live_worker, make_asset) -> None:
    make_asset("AAPL", "stock")
    make_asset("MSFT", "stock")

    first = fetch_quotes.delay("stock", ["AAPL", "MSFT"]).get(timeout=30)
    second = fetch_quotes.delay("stock", ["AAPL", "MSFT"]).get(timeout=30)

    assert first["stored_quotes"] == second["stored_quotes"] == 2
    assert Quote.objects.count() == 2
    assert set(Quote.objects.values_list("source", flat=True)) == {"yahoo"}


def test_a_fetch_skips_symbols_of_another_class_and_stores_the_rest(live_worker, make_asset) -> None:
    make_asset("AAPL", "stock")
    make_asset("BTC", "crypto")

    summary = fetch_quotes.delay("stock", ["AAPL", "BTC", "NOPE"]).get(timeout=30)

    assert summary["stored_quotes"] == 1
    assert summary["skipped"] == ["BTC", "NOPE"]
    assert list(Quote.objects.values_list("asset__symbol", flat=True)) == ["AAPL"]


def test_dispatched_batches_store_no_result_row_but_their_run_counts_them(live_worker, make_asset) -> None:
    for symbol in ("AAPL", "MSFT"):
        make_asset(symbol, "stock")

    run_id = dispatch_quotes.delay("stock").get(timeout=30)["run"]

    assert wait_for(lambda: DispatchRun.objects.get(pk=run_id).status == "done"), live_worker.log()[-2000:]
    assert DispatchRun.objects.get(pk=run_id).done == 2
    # The dispatch itself keeps its row (an operator reads it); its batch does not: the run has its outcome.
    assert TaskResult.objects.filter(task_name="quotes.dispatch", status="SUCCESS").count() == 1
    assert not TaskResult.objects.filter(task_name="quotes.fetch").exists()
    # A batch sent by hand keeps its result.
    assert fetch_quotes.delay("stock", ["AAPL"]).get(timeout=30)["stored_quotes"] == 1
