"""A closed stock holds its last close: the simulated quote on a weekend or holiday is the close, every fetch.

The walk prices at the moment it is asked; a real provider asked while the exchange is closed reports
the regular session's last trade, stamped at the close. With the market clock of each symbol passed
in, the simulated provider does the same, and crypto (no calendar) keeps moving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
import time_machine

from backend.common.exchange_sessions import ALWAYS_OPEN, MarketClock, market_clock
from backend.providers.models import QuoteBatch
from backend.providers.simulated import SimulatedClient

EXCHANGES = {"AAPL": "XNYS", "MSFT": "XNAS", "BTC": ALWAYS_OPEN}
STOCKS = ["AAPL", "MSFT"]
# Friday 4 December 2026, 16:00 New York (EST): the close before the weekend.
FRIDAY_CLOSE = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
# Thursday 24 December 2026, 13:00 New York: Christmas Eve's early close, the one before Christmas.
CHRISTMAS_EVE_CLOSE = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
# (two moments of the closed stretch, the close before them)
CLOSED = {
    "saturday": ((datetime(2026, 12, 5, 14, 3, tzinfo=UTC), datetime(2026, 12, 5, 23, 41, tzinfo=UTC)), FRIDAY_CLOSE),
    "sunday": ((datetime(2026, 12, 6, 3, 17, tzinfo=UTC), datetime(2026, 12, 6, 22, 58, tzinfo=UTC)), FRIDAY_CLOSE),
    "christmas": (
        (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), datetime(2026, 12, 25, 19, 45, tzinfo=UTC)),
        CHRISTMAS_EVE_CLOSE,
    ),
    # Before Monday's open the exchange is still closed: pre-market moves no regular price.
    "monday pre-market": (
        (datetime(2026, 12, 7, 9, 5, tzinfo=UTC), datetime(2026, 12, 7, 14, 29, tzinfo=UTC)),
        FRIDAY_CLOSE,
    ),
}
# Wednesday 2 December 2026, 10:00 and 12:30 New York: mid-session.
MID_SESSION = (datetime(2026, 12, 2, 15, 0, tzinfo=UTC), datetime(2026, 12, 2, 17, 30, tzinfo=UTC))


def clocks(symbols: Sequence[str], at: datetime) -> Mapping[str, MarketClock]:
    """Each known symbol's market clock from the real calendars, as the task layer passes it in."""
    return {symbol: market_clock(EXCHANGES[symbol], at) for symbol in symbols if symbol in EXCHANGES}


def fetch_at(client: SimulatedClient, at: datetime, symbols: Sequence[str]) -> QuoteBatch:
    with time_machine.travel(at, tick=False):
        return client.fetch_quotes(symbols)


def prices(batch: QuoteBatch) -> dict[str, object]:
    return {quote.symbol: quote.price for quote in batch.quotes}


@pytest.mark.parametrize("day", list(CLOSED))
def test_a_closed_stock_is_quoted_at_its_last_close_on_every_fetch(day: str) -> None:
    (early, late), close = CLOSED[day]
    client = SimulatedClient(market_clocks=clocks)

    first, second = fetch_at(client, early, STOCKS), fetch_at(client, late, STOCKS)

    assert first == second  # price, stamp, 24 h change, volume and running bar alike
    # The price the walk had at the close, as a fetch at that moment gives it.
    at_close = fetch_at(SimulatedClient(), close, STOCKS)
    assert prices(first) == prices(at_close)
    assert {quote.timestamp for quote in first.quotes} == {close}


@pytest.mark.parametrize("day", list(CLOSED))
def test_a_closed_stocks_running_bar_is_its_last_sessions_bar_closing_at_the_close(day: str) -> None:
    (early, late), close = CLOSED[day]
    client = SimulatedClient(market_clocks=clocks)

    batch = fetch_at(client, early, ["AAPL"])

    (quote,), (bar,) = batch.quotes, batch.bars
    assert bar.timestamp == close.replace(hour=0, minute=0)  # the session's day, not the weekend's
    assert bar.close == quote.price and bar.low <= quote.price <= bar.high
    assert fetch_at(client, late, ["AAPL"]).bars == batch.bars


def test_a_stock_in_session_still_moves_and_is_stamped_at_the_minute_asked() -> None:
    client = SimulatedClient(market_clocks=clocks)
    plain = SimulatedClient()
    first, second = (fetch_at(client, at, STOCKS) for at in MID_SESSION)

    for symbol in STOCKS:
        assert prices(first)[symbol] != prices(second)[symbol]
    assert [q.timestamp for q in second.quotes] == [MID_SESSION[1]] * 2
    # In session the calendar changes nothing: the walk as it always was.
    assert first == fetch_at(plain, MID_SESSION[0], STOCKS)


def test_crypto_keeps_moving_on_a_sunday() -> None:
    (early, late), _ = CLOSED["sunday"]
    client = SimulatedClient(market_clocks=clocks)

    first, second = fetch_at(client, early, ["BTC"]), fetch_at(client, late, ["BTC"])

    assert prices(first)["BTC"] != prices(second)["BTC"]
    assert (first.quotes[0].timestamp, second.quotes[0].timestamp) == (early, late)


def test_without_market_clocks_every_symbol_is_priced_when_asked() -> None:
    # What a caller that knows no calendar (news, a bare client) gets: the walk at the minute.
    (early, late), _ = CLOSED["sunday"]
    client = SimulatedClient()

    assert prices(fetch_at(client, early, ["AAPL"])) != prices(fetch_at(client, late, ["AAPL"]))


def test_a_symbol_without_a_clock_is_priced_when_asked_beside_closed_stocks() -> None:
    (early, late), close = CLOSED["sunday"]
    client = SimulatedClient(market_clocks=clocks)

    first, second = fetch_at(client, early, ["AAPL", "ZZZ"]), fetch_at(client, late, ["AAPL", "ZZZ"])

    assert prices(first)["AAPL"] == prices(second)["AAPL"]
    assert prices(first)["ZZZ"] != prices(second)["ZZZ"]
    assert [q.timestamp for q in first.quotes] == [close, early]
