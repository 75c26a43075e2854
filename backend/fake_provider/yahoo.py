"""Fake Yahoo Finance: cookie + crumb, v7 quotes and v8 chart bars."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from backend.common.exchange_sessions import PRE_MARKET_OPENS
from backend.fake_provider.market import (
    COINS,
    DAY,
    MAX_BARS,
    MONTH,
    NAMES,
    NEW_YORK,
    aligned_times,
    is_trading_day,
    latest_session_day,
    month_starts,
    months_back,
    num_value,
    ny_ts,
    post_market_end_ts,
    previous_trading_day,
    price_digits,
    session_close_ts,
    session_open_ts,
)
from backend.fake_provider.wire import (
    ApiRequest,
    BadParam,
    Reply,
    comma_list,
    cookies,
    int_param,
    json_reply,
    text_reply,
    truthy,
)
from backend.fake_provider.yahoo_symbols import yahoo_asset, yahoo_exchange, yahoo_profile

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer

YAHOO_UNAUTHORIZED = "Invalid Crumb. For Developers - https://bit.ly/yahoo-finance-api-feedback"


def yahoo_finance_error(status: int, code: str, description: str) -> Reply:
    """Yahoo's ``finance.error`` shape."""
    return json_reply(status, {"finance": {"result": None, "error": {"code": code, "description": description}}})


_YAHOO_INTERVALS = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
    "1d": DAY,
    "5d": 5 * DAY,
    "1wk": 7 * DAY,
    "1mo": MONTH,
    "3mo": 3 * MONTH,
}


_YAHOO_RANGE_MONTHS = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24, "5y": 60, "10y": 120}


_YAHOO_RANGES = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")


_YAHOO_SYMBOL_RE = re.compile(r"^[A-Za-z0-9^.=\-]{1,20}$")


class YahooApi:
    """The fake Yahoo Finance endpoints; reads the server's clock, options and unknown symbols."""

    provider = "yahoo"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server
        # Issued session cookies; a crumb is an HMAC of its cookie under a per-server secret.
        self._lock = threading.Lock()
        self._cookies: set[str] = set()
        self._secret = secrets.token_bytes(16)

    def expire_sessions(self) -> None:
        """Forget every issued cookie, as if the crumbs expired."""
        with self._lock:
            self._cookies = set()

    def handle(self, req: ApiRequest) -> Reply:
        path = req.path
        if path in ("/", "/fc"):
            return self._yahoo_cookie()
        if path == "/v1/test/getcrumb":
            return self._yahoo_crumb(req)
        if path == "/v7/finance/quote":
            return self._yahoo_quote(req)
        if path.startswith("/v8/finance/chart/"):
            return self._yahoo_chart(req, unquote(path[len("/v8/finance/chart/") :]))
        return yahoo_finance_error(404, "Not Found", "HTTP 404 Not Found")

    def _yahoo_cookie(self) -> Reply:
        value = "d=AQABBA" + secrets.token_urlsafe(24) + "&S=AQAAA" + secrets.token_urlsafe(12)
        with self._lock:
            self._cookies.add(value)
        # Host-only, not Secure: the fake is plain http on 127.0.0.1 and the jar must send it back.
        cookie = f"A3={value}; Max-Age=31557600; Path=/; SameSite=None; HttpOnly"
        reply = text_reply(200, "<html><body>ok</body></html>", "text/html; charset=utf-8")
        reply.headers.append(("Set-Cookie", cookie))
        return reply

    def _yahoo_crumb_for(self, cookie: str) -> str:
        digest = hmac.new(self._secret, cookie.encode(), hashlib.sha256).digest()
        return "".join(ch for ch in base64.b64encode(digest).decode() if ch.isalnum())[:11]

    def _yahoo_session(self, req: ApiRequest) -> str | None:
        cookie = cookies(req.headers).get("A3")
        with self._lock:
            return cookie if cookie in self._cookies else None

    def _yahoo_crumb(self, req: ApiRequest) -> Reply:
        # yfinance reports getcrumb answering "too many requests" to non-browser User-Agents.
        if "Mozilla/" not in (req.headers.get("User-Agent") or ""):
            return text_reply(429, "Too Many Requests")
        cookie = self._yahoo_session(req)
        if cookie is None:
            return yahoo_finance_error(401, "Unauthorized", "Invalid Cookie")
        return text_reply(200, self._yahoo_crumb_for(cookie))

    def _yahoo_quote(self, req: ApiRequest) -> Reply:
        if self.server.yahoo_require_crumb:
            cookie = self._yahoo_session(req)
            if cookie is None:
                return yahoo_finance_error(401, "Unauthorized", "Invalid Cookie")
            crumb = req.get("crumb")
            if not crumb or not hmac.compare_digest(crumb, self._yahoo_crumb_for(cookie)):
                return yahoo_finance_error(401, "Unauthorized", YAHOO_UNAUTHORIZED)
        symbols = [s.upper() for s in comma_list(req.get("symbols"))]
        if not symbols:
            return yahoo_finance_error(400, "Bad Request", "Missing required query parameter=symbols")
        now = self.server.now()
        rows = [
            self._yahoo_quote_row(s, now, req.nan)
            for s in dict.fromkeys(symbols)
            if _YAHOO_SYMBOL_RE.match(s) and not self.server.is_unknown(s, yahoo_asset(s))
        ]
        return json_reply(200, {"quoteResponse": {"result": rows, "error": None}})

    def _yahoo_quote_row(self, symbol: str, now: float, nan: bool) -> dict[str, Any]:
        p = yahoo_profile(symbol)
        ex = yahoo_exchange(symbol, now)
        digits = price_digits(p.price)
        asset = yahoo_asset(symbol)
        name = NAMES.get(symbol) or (
            f"{COINS[asset][1]} {ex['currency']}" if asset in COINS else f"{symbol.title()} Holdings"
        )
        if ex["continuous"]:
            market_time, state = int(now), "REGULAR"
        else:
            day = latest_session_day(now)
            close = session_close_ts(day)
            market_time = int(min(now, close))
            state = "REGULAR" if now < close else "POST" if now < post_market_end_ts(day) else "CLOSED"
        tick = p.price * 0.0001
        return {
            "language": "en-US",
            "region": "US",
            "quoteType": ex["kind"],
            "typeDisp": ex["kind"].title(),
            "quoteSourceName": "Delayed Quote",
            "triggerable": True,
            "currency": ex["currency"],
            "symbol": symbol,
            "shortName": name,
            "longName": name,
            "exchange": ex["exchange"],
            "fullExchangeName": ex["full"],
            "market": "us_market" if not ex["continuous"] else "ccc_market",
            "marketState": state,
            "exchangeTimezoneName": ex["tz_name"],
            "exchangeTimezoneShortName": ex["tz_short"],
            "gmtOffSetMilliseconds": ex["gmtoffset"] * 1000,
            "priceHint": digits,
            "regularMarketPrice": num_value(p.price, nan, digits),
            "regularMarketChange": num_value(p.change, nan, digits + 2),
            "regularMarketChangePercent": num_value(p.change_pct, nan, 4),
            "regularMarketTime": market_time,
            "regularMarketOpen": num_value(p.open, nan, digits),
            "regularMarketDayHigh": num_value(p.high, nan, digits),
            "regularMarketDayLow": num_value(p.low, nan, digits),
            "regularMarketVolume": int(p.volume),
            "regularMarketPreviousClose": num_value(p.prev_close, nan, digits),
            "bid": num_value(p.price - tick, nan, digits),
            "ask": num_value(p.price + tick, nan, digits),
            "bidSize": 1 + p.seed % 40,
            "askSize": 1 + p.seed % 37,
            "fiftyTwoWeekHigh": num_value(p.price * 1.31, nan, digits),
            "fiftyTwoWeekLow": num_value(p.price * 0.72, nan, digits),
            "exchangeDataDelayedBy": 0,
            "tradeable": False,
        }

    def _yahoo_chart(self, req: ApiRequest, raw_symbol: str) -> Reply:
        symbol = raw_symbol.upper()

        def chart_error(status: int, code: str, description: str) -> Reply:
            return json_reply(status, {"chart": {"result": None, "error": {"code": code, "description": description}}})

        if not _YAHOO_SYMBOL_RE.match(symbol) or self.server.is_unknown(symbol, yahoo_asset(symbol)):
            return chart_error(404, "Not Found", "No data found, symbol may be delisted")
        interval = req.get("interval") or "1d"
        step = _YAHOO_INTERVALS.get(interval)
        if step is None:
            valid = ", ".join(_YAHOO_INTERVALS)
            return chart_error(
                400,
                "Bad Request",
                f"Invalid input - interval={interval} is not supported. Valid intervals: [{valid}]",
            )
        now = self.server.now()
        p = yahoo_profile(symbol)
        ex = yahoo_exchange(symbol, now)
        first_trade = 1410912000 if ex["kind"] == "CRYPTOCURRENCY" else 315532800 + p.seed % (30 * 365 * DAY)
        prepost = truthy(req.get("includePrePost"))
        range_ = req.get("range")
        try:
            period1 = int_param(req.params, "period1")
            period2 = int_param(req.params, "period2")
        except BadParam as exc:
            return chart_error(400, "Bad Request", f"Invalid input - {exc} must be epoch seconds")
        if period1 is not None:
            start, end, range_ = float(period1), float(period2 if period2 is not None else now), ""
            if end < start:
                return chart_error(400, "Bad Request", "Invalid input - start date cannot be after end date.")
        else:
            range_ = range_ or "1mo"
            if range_ not in _YAHOO_RANGES:
                return chart_error(400, "Bad Request", f"Invalid input - range={range_} is not supported.")
            start, end = self._yahoo_range_start(range_, now, ex["continuous"], prepost, first_trade), now
        end = min(end, now + 1)
        start = max(start, float(first_trade))
        if 0 < step < DAY:
            if step == 60 and (end - start > 8 * DAY or start < now - 30 * DAY):
                return chart_error(
                    422,
                    "Unprocessable Entity",
                    f"1m data not available for startTime={int(start)} and endTime={int(end)}. "
                    "Only 8 days worth of 1m granularity data are allowed to be fetched per "
                    "request.",
                )
            if start < now - 60 * DAY:
                return chart_error(
                    422,
                    "Unprocessable Entity",
                    f"{interval} data not available for startTime={int(start)} and "
                    f"endTime={int(end)}. The requested range must be within the last 60 days.",
                )
        bars = self._yahoo_bar_times(step, start, end, ex["continuous"], prepost)
        digits = price_digits(p.price)
        opens, highs, lows, closes, volumes = [], [], [], [], []
        for t, length in bars:
            o, h, lo, c, v = p.bar(t, length)
            opens.append(num_value(o, req.nan, digits))
            highs.append(num_value(h, req.nan, digits))
            lows.append(num_value(lo, req.nan, digits))
            closes.append(num_value(c, req.nan, digits))
            volumes.append(int(v))
        daily = step >= DAY or step < 0
        indicators: dict[str, Any] = {
            "quote": [{"open": opens, "high": highs, "low": lows, "close": closes, "volume": volumes}]
        }
        if daily:
            indicators["adjclose"] = [{"adjclose": list(closes)}]
        if not bars:
            # Yahoo's answer for a window without a trade (1m over a weekend): no "timestamp" key and
            # empty column objects, not empty lists.
            indicators = {"quote": [{}], **({"adjclose": [{}]} if daily else {})}
        meta = {
            "currency": ex["currency"],
            "symbol": symbol,
            "exchangeName": ex["exchange"],
            "fullExchangeName": ex["full"],
            "instrumentType": ex["kind"],
            "firstTradeDate": first_trade,
            "regularMarketTime": int(now)
            if ex["continuous"]
            else int(min(now, session_close_ts(latest_session_day(now)))),
            "hasPrePostMarketData": not ex["continuous"],
            "gmtoffset": ex["gmtoffset"],
            "timezone": ex["tz_short"],
            "exchangeTimezoneName": ex["tz_name"],
            "regularMarketPrice": num_value(p.price, req.nan, digits),
            "regularMarketDayHigh": num_value(p.high, req.nan, digits),
            "regularMarketDayLow": num_value(p.low, req.nan, digits),
            "regularMarketVolume": int(p.volume),
            "chartPreviousClose": num_value(p.prev_close, req.nan, digits),
            "previousClose": num_value(p.prev_close, req.nan, digits),
            "scale": 3,
            "priceHint": digits,
            "dataGranularity": interval,
            "range": range_,
            "validRanges": list(_YAHOO_RANGES),
        }
        result = {"meta": meta, **({"timestamp": [t for t, _ in bars]} if bars else {}), "indicators": indicators}
        return json_reply(200, {"chart": {"result": [result], "error": None}})

    @staticmethod
    def _yahoo_range_start(range_: str, now: float, continuous: bool, prepost: bool, first_trade: int) -> float:
        if range_ in ("1d", "5d"):
            days = 1 if range_ == "1d" else 5
            if continuous:
                return now - days * DAY
            day = latest_session_day(now)
            for _ in range(days - 1):
                day = previous_trading_day(day)
            return ny_ts(day, PRE_MARKET_OPENS) if prepost else session_open_ts(day)
        if range_ == "ytd":
            return datetime(datetime.fromtimestamp(now, UTC).year, 1, 1, tzinfo=UTC).timestamp()
        if range_ == "max":
            return float(first_trade)
        return months_back(datetime.fromtimestamp(now, UTC), _YAHOO_RANGE_MONTHS[range_]).timestamp()

    @staticmethod
    def _yahoo_bar_times(step: int, start: float, end: float, continuous: bool, prepost: bool) -> list[tuple[int, int]]:
        """(open time, length) of each bar; equities follow the NY session (no holidays)."""
        if step < 0:
            tz = UTC if continuous else NEW_YORK
            times = month_starts(start, end, -step, tz)
            return [(int(t), 30 * DAY * -step) for t in times]
        if continuous:
            offset = 4 * DAY if step == 7 * DAY else 0  # weeks start on Monday
            return [(t, step) for t in aligned_times(step, start, end, offset=offset)]
        out: list[tuple[int, int]] = []
        day = datetime.fromtimestamp(start, NEW_YORK).date()
        last = datetime.fromtimestamp(end, NEW_YORK).date()
        trading_days = 0
        while day <= last and len(out) < MAX_BARS:
            if is_trading_day(day):
                opens = ny_ts(day, PRE_MARKET_OPENS) if prepost else session_open_ts(day)
                closes = post_market_end_ts(day) if prepost else session_close_ts(day)
                if step < DAY:
                    t = opens
                    while t < closes:
                        if start <= t < end:
                            out.append((int(t), step))
                        t += step
                else:
                    stamp = session_open_ts(day)
                    wanted = (
                        step == DAY
                        or (step == 5 * DAY and trading_days % 5 == 0)
                        or (step == 7 * DAY and day.weekday() == 0)
                    )
                    if wanted and start <= stamp < end:
                        out.append((int(stamp), int(session_close_ts(day) - stamp) if step == DAY else step))
                    trading_days += 1
            day += timedelta(days=1)
        return out
