"""The simulated sources know each asset's exchange: a closed stock holds its close, crypto moves on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine

from backend.common.exchange_sessions import market_clock
from backend.market.conditions import market_clocks
from backend.providers.models import QuoteBatch
from backend.tasks.sources import quote_source, reset_sources

pytestmark = pytest.mark.django_db

SUNDAY = (datetime(2026, 12, 6, 3, 17, tzinfo=UTC), datetime(2026, 12, 6, 22, 58, tzinfo=UTC))
FRIDAY_CLOSE = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


@pytest.fixture
def simulated(settings) -> Iterator[None]:
    settings.MARKET_DATA_MODE = "simulated"
    reset_sources()
    yield
    reset_sources()


def fetch_at(asset_class: str, at: datetime, symbols: list[str]) -> QuoteBatch:
    with time_machine.travel(at, tick=False):
        return quote_source(asset_class).fetch_quotes(symbols)


def test_market_clocks_reads_each_assets_exchange_blank_meaning_the_default(make_asset) -> None:
    make_asset("AAPL", "stock", exchange="")
    make_asset("MSFT", "stock", exchange="XNAS")
    make_asset("BTC", "crypto", exchange="XNYS")  # crypto trades around the clock whatever its code says

    stocks = market_clocks("stock", ["AAPL", "MSFT", "NOPE"], SUNDAY[0])
    crypto = market_clocks("crypto", ["BTC"], SUNDAY[0])

    assert stocks == {"AAPL": market_clock("XNYS", SUNDAY[0]), "MSFT": market_clock("XNAS", SUNDAY[0])}
    assert crypto["BTC"].in_session


def test_on_a_sunday_the_stock_source_repeats_fridays_close_and_crypto_moves(simulated, make_asset) -> None:
    make_asset("AAPL", "stock")
    make_asset("MSFT", "stock", exchange="XNAS")
    make_asset("BTC", "crypto")

    stocks = [fetch_at("stock", at, ["AAPL", "MSFT"]) for at in SUNDAY]
    crypto = [fetch_at("crypto", at, ["BTC"]) for at in SUNDAY]

    assert stocks[0] == stocks[1]
    assert {quote.timestamp for quote in stocks[0].quotes} == {FRIDAY_CLOSE}
    assert crypto[0].quotes[0].price != crypto[1].quotes[0].price
    assert [batch.quotes[0].timestamp for batch in crypto] == list(SUNDAY)


def test_an_exchange_edited_in_admin_applies_at_the_next_fetch(simulated, make_asset) -> None:
    # The source is built once per process; the exchange is looked up on every fetch, not then.
    asset = make_asset("AAPL", "stock")
    assert fetch_at("stock", SUNDAY[0], ["AAPL"]) == fetch_at("stock", SUNDAY[1], ["AAPL"])

    asset.exchange = "CRYPTO"
    asset.save(update_fields=["exchange"])

    assert fetch_at("stock", SUNDAY[0], ["AAPL"]) != fetch_at("stock", SUNDAY[1], ["AAPL"])
