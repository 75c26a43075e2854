"""Alpha Vantage: GLOBAL_QUOTE (one symbol per call) and TIME_SERIES_DAILY bars.

Identifiers are Alpha Vantage tickers (``IBM``, ``TSCO.LON``); ``Quote.symbol`` is the ticker passed in.

The API only accepts the key as the ``apikey`` query parameter, so every URL that reaches a log or an
exception goes through ``scrub_url`` (done inside ``request_json``). Errors arrive as HTTP 200:
``Note`` (per-minute limit) pauses Alpha Vantage for a minute, ``Information`` about the rate limit
(the 25/day cap) pauses it until the next UTC midnight, when the daily quota resets;
``Information`` about a premium endpoint is permanent. ``Error Message`` is permanent (a bad key or
an unknown symbol), and an empty ``Global Quote`` means an unknown symbol.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from backend.common.exchange_sessions import latest_close, session_close_on
from backend.providers.base import ProviderClient
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderThrottledError,
    UnknownSymbolError,
)
from backend.providers.http import join_url, request_json, strip_control
from backend.providers.models import Bar, Quote, QuoteBatch, Rejected
from backend.providers.validation import (
    TICKER,
    InvalidRecordError,
    check_bar,
    check_interval,
    check_limit,
    keep_last_per_timestamp,
    optional_decimal,
    seconds_to_utc_midnight,
    split_symbols,
    to_decimal,
    to_utc,
    utc_now,
)

logger = logging.getLogger(__name__)

SUPPORTED_INTERVALS = ("1d",)
COMPACT_POINTS = 100
MAX_BARS = 5000
# GLOBAL_QUOTE serves US listings; their trading day ends at this exchange's regular close.
_CALENDAR = "XNYS"
# "Note" is the per-minute limit: a minute is enough. "Information" is the daily quota (until UTC
# midnight) unless it says the endpoint or parameter is premium-only.
_NOTE_RETRY_AFTER = 60.0
_RATE_LIMIT = re.compile(r"(?i)rate limit|per day|per minute|call frequency")
_PREMIUM_ONLY = re.compile(r"(?i)premium (endpoint|feature)|is a premium")


class AlphaVantageClient(ProviderClient):
    """Alpha Vantage client for single-symbol quotes and daily bars (key in the query string)."""

    name = "alphavantage"
    # GLOBAL_QUOTE takes one symbol; the 100-symbol REALTIME_BULK_QUOTES is premium-only.
    batch_limit = 1

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Fetch GLOBAL_QUOTE for each ticker (one request each); unknown tickers become ``Rejected``.

        A throttle body pauses the provider and fails the tickers not yet asked (``QuoteBatch.failed``);
        a bad key stops the whole call.
        """
        # Reference: https://www.alphavantage.co/documentation/#latestprice
        return self._quotes_in_batches(symbols, pattern=TICKER, fetch=self._fetch_one)

    def _fetch_one(self, batch: Sequence[str]) -> tuple[list[Quote], list[Rejected]]:
        """One GLOBAL_QUOTE request for the one ticker in ``batch`` (``batch_limit`` is 1)."""
        (symbol,) = batch
        raw = self._query({"function": "GLOBAL_QUOTE", "symbol": symbol}, data_key="Global Quote")
        try:
            return [_to_quote(raw["Global Quote"], symbol=symbol, now=self._clock())], []
        except InvalidRecordError as exc:
            return [], [Rejected(symbol=symbol, reason=f"alphavantage: {strip_control(exc)}")]

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Fetch up to ``limit`` daily bars for one ticker, oldest first, stamped 00:00 UTC of each day."""
        # Reference: https://www.alphavantage.co/documentation/#daily
        split = split_symbols([symbol], pattern=TICKER)
        if split[1]:
            raise UnknownSymbolError(split[1][0].reason, provider=self.name)
        check_interval(interval, SUPPORTED_INTERVALS)
        check_limit(limit, maximum=MAX_BARS)
        params = {
            "function": "TIME_SERIES_DAILY",
            "symbol": symbol,
            "outputsize": "compact" if limit <= COMPACT_POINTS else "full",
        }
        raw = self._query(params, data_key="Time Series (Daily)")
        bars = _to_bars(raw["Time Series (Daily)"], symbol=symbol, now=self._clock())
        return keep_last_per_timestamp(bars, limit)

    def _query(self, params: dict[str, str], *, data_key: str) -> dict[str, Any]:
        """One request to ``/query``; classify the HTTP-200 error bodies Alpha Vantage uses."""
        if not self._api_key:
            raise InvalidKeyError("alphavantage: no API key configured", provider=self.name)
        with self._gate():
            raw = request_json(
                self._http,
                "GET",
                join_url(self._base_url, "/query"),
                provider=self.name,
                params={**params, "apikey": self._api_key},
            )
            return _classify(raw, data_key=data_key, symbol=params["symbol"], now=self._clock())


def _classify(raw: Any, *, data_key: str, symbol: str, now: datetime | None = None) -> dict[str, Any]:
    """Raise the right error for a throttle/error body, or return the body when ``data_key`` holds data."""
    if not isinstance(raw, dict):
        raise MalformedReplyError("alphavantage: reply is not an object", provider="alphavantage")
    if "Note" in raw:
        raise ProviderThrottledError(
            f"alphavantage: throttled (Note): {strip_control(raw['Note'], 120)}",
            provider="alphavantage",
            retry_after=_NOTE_RETRY_AFTER,
        )
    if "Information" in raw and data_key not in raw:
        text = strip_control(raw["Information"], 160)
        if _PREMIUM_ONLY.search(text) and not _RATE_LIMIT.search(text):
            raise PermanentProviderError(f"alphavantage: premium only: {text}", provider="alphavantage")
        # The daily cap (25 requests on a free key) resets at midnight UTC; asking before then wastes nothing
        # but it starves nobody else either, so the whole provider waits.
        raise ProviderThrottledError(
            f"alphavantage: throttled (Information): {text}",
            provider="alphavantage",
            retry_after=seconds_to_utc_midnight(now),
        )
    if "Error Message" in raw:
        message = strip_control(raw["Error Message"], 160)
        if "apikey" in message.lower():
            raise InvalidKeyError(f"alphavantage: {message}", provider="alphavantage")
        raise UnknownSymbolError(f"alphavantage: {symbol}: {message}", provider="alphavantage")
    data = raw.get(data_key)
    if isinstance(data, dict) and not data:
        raise UnknownSymbolError(f"alphavantage: {symbol}: empty {data_key} (unknown symbol)", provider="alphavantage")
    if not isinstance(data, dict):
        raise MalformedReplyError(f"alphavantage: reply has no {data_key!r} object", provider="alphavantage")
    return raw


def _to_quote(raw: dict[str, Any], *, symbol: str, now: datetime | None = None) -> Quote:
    """Map a ``Global Quote`` object; the trading day becomes its regular close (calendar), capped at now."""
    returned = raw.get("01. symbol")
    if returned is not None and returned != symbol:
        raise InvalidRecordError(f"reply is for {strip_control(returned, 20)!r}, not {symbol}")
    change = raw.get("10. change percent")
    if isinstance(change, str):
        change = change.strip().removesuffix("%")
    return Quote(
        symbol=symbol,
        price=to_decimal(raw.get("05. price"), field="price", positive=True),
        timestamp=_trading_day_close(raw.get("07. latest trading day"), now=now),
        source="alphavantage",
        change_24h_pct=optional_decimal(change, field="change percent", allow_negative=True),
        volume_24h=optional_decimal(raw.get("06. volume"), field="volume"),
        currency="USD",
    )


def _trading_day_close(value: Any, *, now: datetime | None) -> datetime:
    """``2026-11-27`` -> that day's regular close in UTC (13:00 New York: an early close); during the session, now."""
    day = _parse_date(value)
    close = session_close_on(_CALENDAR, day)
    if close is None:  # not a session day by the calendar: the last close at or before that day's end
        close = latest_close(_CALENDAR, datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))
    if close is None:
        raise InvalidRecordError(f"trading day {day.isoformat()} has no session close")
    reference = now if now is not None else utc_now()
    return to_utc(min(close, reference), now=reference)


def _parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise InvalidRecordError("trading day missing")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRecordError(f"trading day {value[:20]!r} is not YYYY-MM-DD") from None


def _to_bars(series: dict[str, Any], *, symbol: str, now: datetime | None) -> list[Bar]:
    """Map ``Time Series (Daily)`` (date -> numbered fields) to bars at 00:00 UTC; bad days are dropped."""
    bars: list[Bar] = []
    for key, row in series.items():
        try:
            if not isinstance(row, dict):
                raise InvalidRecordError("daily row is not an object")
            day = datetime.combine(_parse_date(key), time(0), tzinfo=UTC)
            bars.append(
                check_bar(
                    Bar(
                        symbol=symbol,
                        interval="1d",
                        timestamp=to_utc(day, now=now),
                        open=to_decimal(row.get("1. open"), field="open"),
                        high=to_decimal(row.get("2. high"), field="high"),
                        low=to_decimal(row.get("3. low"), field="low"),
                        close=to_decimal(row.get("4. close"), field="close"),
                        volume=to_decimal(row.get("5. volume"), field="volume"),
                        source="alphavantage",
                    )
                )
            )
        except InvalidRecordError as exc:
            logger.warning("alphavantage dropped a daily bar for %s: %s", symbol, strip_control(exc))
    return bars
