"""Simulated prices look like the asset: each walk wanders around the asset's reference price."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from backend.market.demo import reference_prices
from backend.providers.simulated import SimulatedClient

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


def within(price: float, level: float, factor: float = 1.5) -> bool:
    """Whether ``price`` is within a factor of ``level`` (the walk's drift stays near ±16 %)."""
    return level / factor < price < level * factor


def test_a_reference_price_sets_the_level_of_quotes_and_bars() -> None:
    client = SimulatedClient(clock=FrozenClock, reference_prices={"BTC": 60_000, "DOGE": 0.12})
    quotes = {q.symbol: float(q.price) for q in client.fetch_quotes(["BTC", "DOGE"]).quotes}
    assert within(quotes["BTC"], 60_000) and within(quotes["DOGE"], 0.12)
    bars = client.fetch_bars("BTC", interval="1d", limit=250)
    assert all(within(float(bar.low), 60_000) and within(float(bar.high), 60_000) for bar in bars)


def test_without_a_reference_price_the_level_comes_from_the_symbol() -> None:
    plain = SimulatedClient(clock=FrozenClock)
    other = SimulatedClient(clock=FrozenClock, reference_prices={"BTC": 60_000})
    # A reference for one symbol leaves every other walk exactly as it was.
    assert plain.fetch_quotes(["AAPL"]) == other.fetch_quotes(["AAPL"])
    assert 5 <= plain.base_price("AAPL") <= 5_000


def test_prices_stay_deterministic_across_processes_and_instances() -> None:
    one = SimulatedClient(clock=FrozenClock, reference_prices={"ETH": 3_000})
    two = SimulatedClient(clock=FrozenClock, reference_prices={"ETH": 3_000})
    assert one.fetch_quotes(["ETH"]) == two.fetch_quotes(["ETH"])


def test_a_reference_price_that_is_not_a_finite_positive_number_is_ignored() -> None:
    plain = SimulatedClient()
    client = SimulatedClient(reference_prices={"BTC": 0, "ETH": -5, "SOL": math.inf, "ADA": math.nan})
    for symbol in ("BTC", "ETH", "SOL", "ADA"):
        assert client.base_price(symbol) == plain.base_price(symbol) > 0


def test_every_demo_asset_has_a_plausible_reference_price() -> None:
    data = json.loads(settings.DEMO_ASSETS_FILE.read_text())
    prices = reference_prices(settings.DEMO_ASSETS_FILE)
    assert set(prices) == {row["symbol"] for row in data["assets"]}
    assert prices["BTC"] > 10_000 and prices["ETH"] > 500  # tens of thousands, not $11
    assert prices["DOGE"] < 1 and 50 < prices["AAPL"] < 1_000
    # Levels spread over orders of magnitude, as real assets do.
    assert math.log10(max(prices.values()) / min(prices.values())) > 4


def test_reference_prices_skips_what_is_not_a_price(tmp_path: Path) -> None:
    path = tmp_path / "assets.json"
    rows = [
        {"symbol": "OK", "reference_price": 12.5},
        {"symbol": "TEXT", "reference_price": "12"},
        {"symbol": "NEG", "reference_price": -1},
        {"symbol": "BOOL", "reference_price": True},
        {"symbol": "HUGE", "reference_price": 1e13},
        {"symbol": "NONE"},
    ]
    path.write_text(json.dumps({"assets": rows}))
    assert reference_prices(path) == {"OK": 12.5}
    assert reference_prices(tmp_path / "missing.json") == {}


@pytest.mark.django_db
def test_the_simulated_source_quotes_btc_in_the_tens_of_thousands(make_asset, settings) -> None:
    from backend.tasks.sources import quote_source, reset_sources

    settings.MARKET_DATA_MODE = "simulated"
    make_asset("BTC", "crypto")
    make_asset("DOGE", "crypto")
    reset_sources()
    try:
        batch = quote_source("crypto").fetch_quotes(["BTC", "DOGE"])
    finally:
        reset_sources()
    prices = {q.symbol: float(q.price) for q in batch.quotes}
    assert prices["BTC"] > 10_000
    assert prices["DOGE"] < 1
