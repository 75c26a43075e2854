"""Dispatchers read the active assets of their own class from the database, in provider-sized batches."""

from __future__ import annotations

import pytest

from backend.tasks import tasks
from backend.tasks.quotes import plan_quote_batches


@pytest.fixture
def universe(make_asset) -> None:
    for symbol in ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN"):
        make_asset(symbol, "stock")
    for symbol in ("BTC", "ETH", "SOL"):
        make_asset(symbol, "crypto")
    make_asset("IBM", "stock", is_active=False)
    make_asset("DOGE", "crypto", is_active=False)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(
        tasks.fetch_quotes, "apply_async", lambda args, **options: calls.append({"args": args, **options})
    )
    return calls


def test_the_stock_dispatcher_sends_only_active_stock_symbols(universe, sent) -> None:
    tasks.dispatch_quotes("stock")
    symbols = [s for call in sent for s in call["args"][1]]
    assert sorted(symbols) == ["AAPL", "AMZN", "MSFT", "NVDA", "TSLA"]
    assert {call["args"][0] for call in sent} == {"stock"}


def test_the_crypto_dispatcher_sends_only_active_crypto_symbols(universe, sent) -> None:
    tasks.dispatch_quotes("crypto")
    assert sorted(s for call in sent for s in call["args"][1]) == ["BTC", "ETH", "SOL"]


def test_each_batch_goes_where_the_routing_function_says(universe, sent) -> None:
    tasks.dispatch_quotes("crypto")
    assert {(call["queue"], call["priority"]) for call in sent} == {("high", 0)}


def test_batches_respect_the_batch_size(universe) -> None:
    assert plan_quote_batches("stock", 2) == [["AAPL", "AMZN"], ["MSFT", "NVDA"], ["TSLA"]]


def test_a_deactivated_asset_leaves_the_next_plan(universe) -> None:
    from backend.market.models import Asset

    Asset.objects.filter(symbol="NVDA").update(is_active=False)
    assert [s for batch in plan_quote_batches("stock", 100) for s in batch] == ["AAPL", "AMZN", "MSFT", "TSLA"]
