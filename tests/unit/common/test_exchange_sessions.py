"""The exchange clock on real calendar days: sessions, extended hours, weekends, holidays, early closes, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from backend.common.exchange_sessions import (
    KNOWN_EXCHANGES,
    Phase,
    UnknownExchangeError,
    market_clock,
    normalise_exchange,
    session_close_on,
)

NY = ZoneInfo("America/New_York")


def ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NY)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "phase", "note"),
    [
        ("2026-11-24 10:00", Phase.OPEN, ""),  # a regular Tuesday
        ("2026-11-24 23:00", Phase.OVERNIGHT, ""),
        ("2026-11-24 05:00", Phase.PRE_MARKET, ""),
        ("2026-11-24 16:30", Phase.POST_MARKET, ""),
        ("2026-11-28 12:00", Phase.CLOSED_DAY, "weekend"),
        ("2026-11-26 10:00", Phase.CLOSED_DAY, "holiday: Thanksgiving"),
        ("2026-11-27 12:59", Phase.OPEN, "early close 13:00"),
        ("2026-11-27 13:00", Phase.POST_MARKET, "early close 13:00"),
        ("2026-11-27 17:00", Phase.OVERNIGHT, "early close 13:00"),  # post-market ends 4 h after the close
        ("2026-12-25 10:00", Phase.CLOSED_DAY, "holiday: Christmas"),
        ("2026-03-08 10:00", Phase.CLOSED_DAY, "weekend"),  # DST starts (a Sunday)
        ("2026-11-01 10:00", Phase.CLOSED_DAY, "weekend"),  # DST ends (a Sunday)
    ],
)
def test_it_knows_the_phase_of_real_days(moment: str, phase: Phase, note: str) -> None:
    clock = market_clock("XNYS", ny(moment))
    assert (clock.phase, clock.day_note) == (phase, note)


@pytest.mark.parametrize("exchange", ["XNYS", "XNAS"])
def test_the_early_close_and_holidays_shape_last_close_and_next_open(exchange: str) -> None:
    thanksgiving = market_clock(exchange, ny("2026-11-26 10:00"))
    assert thanksgiving.last_close == utc("2026-11-25 21:00")
    assert thanksgiving.next_open == utc("2026-11-27 14:30")
    saturday = market_clock(exchange, ny("2026-11-28 12:00"))
    assert saturday.last_close == utc("2026-11-27 18:00")  # 13:00 New York
    assert session_close_on(exchange, date(2026, 11, 27)) == utc("2026-11-27 18:00")
    assert session_close_on(exchange, date(2026, 11, 26)) is None


def test_the_utc_session_moves_with_daylight_saving() -> None:
    # Friday before the spring switch: EST (UTC-5); Monday after: EDT (UTC-4).
    assert market_clock("XNYS", ny("2026-03-06 10:00")).session_open == utc("2026-03-06 14:30")
    assert market_clock("XNYS", ny("2026-03-09 10:00")).session_open == utc("2026-03-09 13:30")
    assert market_clock("XNYS", ny("2026-03-08 10:00")).next_open == utc("2026-03-09 13:30")
    # Autumn: the Friday before closes 20:00 UTC, the Monday after opens 14:30 UTC.
    autumn = market_clock("XNYS", ny("2026-11-01 10:00"))
    assert (autumn.last_close, autumn.next_open) == (utc("2026-10-30 20:00"), utc("2026-11-02 14:30"))
    # 01:30 happens twice on 2026-11-01; both are the same closed Sunday.
    assert market_clock("XNYS", utc("2026-11-01 05:30")).phase is Phase.CLOSED_DAY
    assert market_clock("XNYS", utc("2026-11-01 06:30")).phase is Phase.CLOSED_DAY


@pytest.mark.parametrize(
    "moment", ["2026-11-24 10:00", "2026-11-24 23:00", "2026-11-26 10:00", "2026-12-25 10:00", "2026-03-08 02:30"]
)
def test_crypto_is_always_in_session(moment: str) -> None:
    clock = market_clock("CRYPTO", ny(moment))
    assert clock.phase is Phase.ALWAYS_OPEN and clock.in_session and clock.last_close is None


def test_blank_means_the_default_exchange_and_unknown_codes_are_refused_with_the_known_list() -> None:
    assert normalise_exchange("") == "XNYS"
    assert normalise_exchange(" xnas ") == "XNAS"
    with pytest.raises(UnknownExchangeError) as caught:
        market_clock("NASDAQ", ny("2026-11-24 10:00"))
    assert all(code in str(caught.value) for code in KNOWN_EXCHANGES)


def test_a_moment_years_away_builds_its_own_calendar_window() -> None:
    assert market_clock("XNYS", ny("2031-12-25 10:00")).day_note == "holiday: Christmas"
    assert market_clock("XNYS", ny("2019-07-04 10:00")).phase is Phase.CLOSED_DAY
