"""When an exchange trades: its regular session, extended hours, weekends, holidays and early closes.

The dates come from ``exchange_calendars`` (a maintained calendar per exchange, DST included), never
from a hand-written holiday list or a fixed closing time. Calendars are slow to build and pandas is
slow to import, so both happen on first use, once per process and year window. Plain Python: no
Django, no Celery, so providers may use it too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

DEFAULT_EXCHANGE = "XNYS"
ALWAYS_OPEN = "CRYPTO"
# Codes an asset may carry; the calendar ones are exchange_calendars' ISO 10383 MIC codes.
KNOWN_EXCHANGES: dict[str, str] = {
    "XNYS": "New York Stock Exchange",
    "XNAS": "Nasdaq",
    ALWAYS_OPEN: "crypto venues, trading around the clock",
}
# US extended hours, in exchange-local time: pre-market from 04:00, post-market for up to four hours
# after the regular close (20:00 after a regular close, 17:00 after a 13:00 early close).
PRE_MARKET_OPENS = time(4, 0)
POST_MARKET_LENGTH = timedelta(hours=4)
# How far either side of the moment asked about a cached calendar reaches, in years.
_WINDOW_YEARS = 1
_build_lock = threading.Lock()


class UnknownExchangeError(ValueError):
    """An exchange code no calendar is known for; the message lists the known codes."""


class Phase(StrEnum):
    """Where in its trading day a market is."""

    OPEN = "open"
    PRE_MARKET = "pre-market"
    POST_MARKET = "post-market"
    OVERNIGHT = "overnight"  # a trading day's night, outside regular and extended hours
    CLOSED_DAY = "closed day"  # weekend or holiday: no session at all
    ALWAYS_OPEN = "always open"


@dataclass(frozen=True)
class MarketClock:
    """An exchange's state at one moment; datetimes are UTC, ``day`` is the exchange-local date."""

    exchange: str
    at: datetime
    phase: Phase
    day: date
    day_note: str = ""
    session_open: datetime | None = None
    session_close: datetime | None = None
    last_close: datetime | None = None
    next_open: datetime | None = None

    @property
    def in_session(self) -> bool:
        """Whether regular trading is on (always, for crypto)."""
        return self.phase in (Phase.OPEN, Phase.ALWAYS_OPEN)

    @property
    def is_trading_day(self) -> bool:
        """Whether the exchange has a session on this local day."""
        return self.phase is not Phase.CLOSED_DAY

    def describe(self) -> str:
        """One line for an operator, e.g. ``XNYS post-market (early close 13:00), last close 18:00 UTC``."""
        text = f"{self.exchange} {self.phase.value}"
        if self.day_note:
            text += f" ({self.day_note})"
        if self.last_close is not None and self.phase is not Phase.OPEN:
            text += f", last close {self.last_close:%Y-%m-%d %H:%M} UTC"
        if self.next_open is not None and self.phase is not Phase.OPEN:
            text += f", next open {self.next_open:%Y-%m-%d %H:%M} UTC"
        if self.phase is Phase.OPEN and self.session_close is not None:
            text += f", closes {self.session_close:%H:%M} UTC"
        return text


def normalise_exchange(code: str | None) -> str:
    """Upper-cased known code; blank means the default exchange. Raises ``UnknownExchangeError``."""
    cleaned = (code or "").strip().upper() or DEFAULT_EXCHANGE
    if cleaned not in KNOWN_EXCHANGES:
        known = ", ".join(sorted(KNOWN_EXCHANGES))
        raise UnknownExchangeError(f"unknown exchange code {code!r}; known codes: {known}")
    return cleaned


def market_clock(exchange: str | None, at: datetime) -> MarketClock:
    """The state of ``exchange`` at the aware moment ``at``."""
    code = normalise_exchange(exchange)
    at = at.astimezone(UTC)
    if code == ALWAYS_OPEN:
        return MarketClock(code, at, Phase.ALWAYS_OPEN, at.date())
    calendar = _calendar(code, at.year)
    tz = ZoneInfo(str(calendar.tz))
    local = at.astimezone(tz)
    day = local.date()
    minute = _minute(at)
    last_close = _utc(calendar.previous_close(minute))
    next_open = _utc(calendar.next_open(minute))
    if not calendar.is_session(day.isoformat()):
        return MarketClock(
            code, at, Phase.CLOSED_DAY, day, _closed_day_note(code, day), None, None, last_close, next_open
        )
    session_open = _utc(calendar.session_open(day.isoformat()))
    session_close = _utc(calendar.session_close(day.isoformat()))
    note = ""
    if _is_early_close(calendar, day):
        note = f"early close {session_close.astimezone(tz):%H:%M}"
    if session_close <= at:
        last_close = session_close
    pre_opens = datetime.combine(day, PRE_MARKET_OPENS, tz).astimezone(UTC)
    if session_open <= at < session_close:
        phase = Phase.OPEN
    elif pre_opens <= at < session_open:
        phase = Phase.PRE_MARKET
    elif session_close <= at < session_close + POST_MARKET_LENGTH:
        phase = Phase.POST_MARKET
    else:
        phase = Phase.OVERNIGHT
    return MarketClock(code, at, phase, day, note, session_open, session_close, last_close, next_open)


def session_bounds(exchange: str | None, day: date) -> tuple[datetime, datetime] | None:
    """The regular open and close (UTC) of ``day``'s session, or None when the exchange does not trade that day."""
    code = normalise_exchange(exchange)
    if code == ALWAYS_OPEN:
        return None
    calendar = _calendar(code, day.year)
    if not calendar.is_session(day.isoformat()):
        return None
    return _utc(calendar.session_open(day.isoformat())), _utc(calendar.session_close(day.isoformat()))


def session_close_on(exchange: str | None, day: date) -> datetime | None:
    """The regular close (UTC) of ``day``'s session, or None when the exchange does not trade that day."""
    bounds = session_bounds(exchange, day)
    return bounds[1] if bounds else None


def is_session_day(exchange: str | None, day: date) -> bool:
    """Whether the exchange trades on ``day`` (always, for an always-open market)."""
    return normalise_exchange(exchange) == ALWAYS_OPEN or session_bounds(exchange, day) is not None


def latest_close(exchange: str | None, at: datetime) -> datetime | None:
    """The most recent regular close at or before ``at`` (None for an always-open market)."""
    return market_clock(exchange, at).last_close


def warm_up(exchanges: tuple[str, ...] = ("XNYS", "XNAS"), at: datetime | None = None) -> None:
    """Build the calendars now (e.g. at worker start) instead of inside the first dispatch."""
    year = (at or datetime.now(UTC)).year
    for code in exchanges:
        _calendar(normalise_exchange(code), year)


@lru_cache(maxsize=64)
def _calendar(code: str, year: int) -> ExchangeCalendar:
    # A three-year window is ~0.1 s to build against seconds for the library's default twenty.
    import exchange_calendars

    with _build_lock:
        return exchange_calendars.get_calendar(
            code, start=f"{year - _WINDOW_YEARS}-01-01", end=f"{year + _WINDOW_YEARS}-12-31"
        )


def _minute(at: datetime) -> Any:
    import pandas as pd

    return pd.Timestamp(at).floor("min")


def _utc(stamp: Any) -> datetime:
    return stamp.to_pydatetime().astimezone(UTC)


def _is_early_close(calendar: ExchangeCalendar, day: date) -> bool:
    import pandas as pd

    return pd.Timestamp(day) in calendar.early_closes


@lru_cache(maxsize=512)
def _closed_day_note(code: str, day: date) -> str:
    # Naming a holiday asks pandas' holiday rules (~50 ms): once per exchange and day, not per clock read.
    if day.weekday() >= 5:
        return "weekend"
    calendar = _calendar(code, day.year)
    names = calendar.regular_holidays.holidays(start=day.isoformat(), end=day.isoformat(), return_name=True)
    if len(names):
        return f"holiday: {names.iloc[0]}"
    return "holiday"
