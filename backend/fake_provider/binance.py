"""Fake Binance spot market data: tickers, exchange info and klines, with request weights."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backend.fake_provider.market import (
    DAY,
    MONTH,
    Profile,
    add_months,
    aligned_times,
    month_starts,
    num_text,
    pair_profile,
    profile,
    unit_hash,
)
from backend.fake_provider.wire import ApiRequest, BadParam, Reply, int_param, json_reply, query_param

BINANCE_1003 = (
    "Too much request weight used; current limit is %s request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)


class WeightMeter:
    """Binance's per-minute request weight: the ``X-MBX-USED-WEIGHT`` headers and, with a limit, 429s.

    Weight windows follow the wall clock even when the server's data clock is frozen.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._window = 0
        self._used = 0

    def over_limit(self, sub: str, params: dict[str, list[str]]) -> Reply | None:
        """The 429 Binance sends when this request would go over the limit, else None."""
        now = time.time()
        minute = int(now // 60)
        with self._lock:
            used = self._used if minute == self._window else 0
        if self.limit is None or used + binance_weight(sub, params) <= self.limit:
            return None
        wait = max(1, math.ceil((minute + 1) * 60 - now))
        body = {"code": -1003, "msg": BINANCE_1003 % self.limit}
        return json_reply(429, body, [("Retry-After", str(wait)), ("X-MBX-USED-WEIGHT-1M", str(used))])

    def charge(self, sub: str, params: dict[str, list[str]], reply: Reply) -> Reply:
        """Count this request's weight and report the minute's total on the reply."""
        minute = int(time.time() // 60)
        with self._lock:
            if minute != self._window:
                self._window, self._used = minute, 0
            self._used += binance_weight(sub, params)
            used = self._used
        reply.headers += [("X-MBX-USED-WEIGHT-1M", str(used)), ("X-MBX-USED-WEIGHT", str(used))]
        return reply


def binance_weight(sub: str, params: dict[str, list[str]]) -> int:
    """The request weight Binance charges for this endpoint and parameters."""
    if sub == "/api/v3/ticker/24hr":
        if query_param(params, "symbol"):
            return 2
        raw = query_param(params, "symbols")
        if raw is None:
            return 80
        n = raw.count(",") + 1
        return 2 if n <= 20 else 40 if n <= 100 else 80
    if sub == "/api/v3/ticker/price":
        return 2 if query_param(params, "symbol") else 4
    if sub == "/api/v3/exchangeInfo":
        return 20
    return 2 if sub in ("/api/v3/klines", "/api/v3/uiKlines") else 1


_BINANCE_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")


_BINANCE_SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'


_BINANCE_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "DAI")


_BINANCE_DEFAULT_SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "TRXUSDT",
    "AVAXUSDT",
    "LINKUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "ETHBTC",
    "BNBBTC",
)

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer


_BINANCE_INTERVALS = {
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": 7 * DAY,
    "1M": MONTH,
}


def _binance_split(symbol: str) -> tuple[str, str]:
    for quote in _BINANCE_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, "USDT"


def _binance_profile(symbol: str) -> Profile:
    base, quote = _binance_split(symbol)
    if quote in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI"):
        return profile(base)
    return pair_profile(base, quote)


def _binance_missing(name: str) -> Reply:
    """Binance's 400 for a mandatory parameter that was not sent."""
    msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    return json_reply(400, {"code": -1102, "msg": msg})


class BinanceApi:
    """The fake Binance endpoints; reads the server's clock, options and unknown symbols."""

    provider = "binance"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def handle(self, req: ApiRequest) -> Reply:
        path = req.path
        if path == "/api/v3/ping":
            return json_reply(200, {})
        if path == "/api/v3/time":
            return json_reply(200, {"serverTime": int(self.server.now() * 1000)})
        try:
            if path in ("/api/v3/ticker/price", "/api/v3/ticker/24hr", "/api/v3/exchangeInfo"):
                symbols, single = self._binance_symbols(req)
                if isinstance(symbols, Reply):
                    return symbols
                if path == "/api/v3/exchangeInfo":
                    return self._binance_exchange_info(symbols)
                mini = (req.get("type") or "FULL").upper()
                if mini not in ("FULL", "MINI"):
                    return json_reply(400, {"code": -1104, "msg": "Invalid value for parameter 'type'."})
                rows = [self._binance_ticker(path, s, req.nan, mini == "MINI") for s in symbols]
                return json_reply(200, rows[0] if single else rows)
            if path in ("/api/v3/klines", "/api/v3/uiKlines"):
                return self._binance_klines(req)
        except BadParam as exc:
            return json_reply(400, {"code": -1100, "msg": f"Illegal characters found in parameter '{exc}'."})
        return json_reply(404, {"code": -1000, "msg": f"Unknown path {path}."})

    def _binance_symbols(self, req: ApiRequest) -> tuple[list[str], bool] | tuple[Reply, bool]:
        symbol, raw = req.get("symbol"), req.get("symbols")
        if symbol is not None and raw is not None:
            return json_reply(400, {"code": -1128, "msg": "Combination of optional parameters invalid."}), False
        if symbol is not None:
            if not _BINANCE_SYMBOL_RE.match(symbol):
                msg = "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
                return json_reply(400, {"code": -1100, "msg": msg}), False
            if self.server.is_unknown(symbol, _binance_split(symbol)[0]):
                return json_reply(400, {"code": -1121, "msg": "Invalid symbol."}), False
            return [symbol], True
        if raw is None:
            return list(_BINANCE_DEFAULT_SYMBOLS), False
        # The docs warn that spaces inside the array trigger -1100, so they do here too.
        try:
            symbols = json.loads(raw) if " " not in raw else None
        except ValueError:
            symbols = None
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) and _BINANCE_SYMBOL_RE.match(s) for s in symbols)
        ):
            msg = f"Illegal characters found in parameter 'symbols'; legal range is '{_BINANCE_SYMBOLS_RANGE}'."
            return json_reply(400, {"code": -1100, "msg": msg}), False
        symbols = list(dict.fromkeys(symbols))
        if any(self.server.is_unknown(s, _binance_split(s)[0]) for s in symbols):
            return json_reply(400, {"code": -1121, "msg": "Invalid symbol."}), False
        return symbols, False

    def _binance_ticker(self, path: str, symbol: str, nan: bool, mini: bool) -> dict[str, Any]:
        p = _binance_profile(symbol)
        if path == "/api/v3/ticker/price":
            return {"symbol": symbol, "price": num_text(p.price, nan)}
        close_ms = int(self.server.now() * 1000)
        trades = 100_000 + p.seed % 3_000_000
        first_id = 1_000_000_000 + p.seed % 3_000_000_000
        avg = (p.high + p.low + p.price) / 3
        row: dict[str, Any] = {"symbol": symbol}
        if not mini:
            row |= {
                "priceChange": num_text(p.change, nan),
                "priceChangePercent": num_text(p.change_pct, nan, 3),
                "weightedAvgPrice": num_text(avg, nan),
                "prevClosePrice": num_text(p.prev_close, nan),
            }
        row |= {"lastPrice": num_text(p.price, nan)}
        if not mini:
            tick = p.price * 0.00001
            row |= {
                "lastQty": num_text(0.0012 + (p.seed % 1000) / 1e5, False),
                "bidPrice": num_text(p.price - tick, nan),
                "bidQty": num_text(2.41 + (p.seed % 97) / 10, False),
                "askPrice": num_text(p.price + tick, nan),
                "askQty": num_text(0.518 + (p.seed % 89) / 10, False),
            }
        row |= {
            "openPrice": num_text(p.open, nan),
            "highPrice": num_text(p.high, nan),
            "lowPrice": num_text(p.low, nan),
            "volume": num_text(p.volume, False),
            "quoteVolume": num_text(p.volume * avg, False),
            "openTime": close_ms - DAY * 1000,
            "closeTime": close_ms,
            "firstId": first_id,
            "lastId": first_id + trades - 1,
            "count": trades,
        }
        return row

    def _binance_exchange_info(self, symbols: list[str]) -> Reply:
        rows = []
        for symbol in symbols:
            base, quote = _binance_split(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "isSpotTradingAllowed": True,
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                }
            )
        limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ]
        return json_reply(
            200,
            {
                "timezone": "UTC",
                "serverTime": int(self.server.now() * 1000),
                "rateLimits": limits,
                "exchangeFilters": [],
                "symbols": rows,
            },
        )

    def _binance_klines(self, req: ApiRequest) -> Reply:
        symbol = req.get("symbol")
        if not symbol:
            return _binance_missing("symbol")
        if not _BINANCE_SYMBOL_RE.match(symbol):
            return json_reply(
                400,
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
                },
            )
        interval = req.get("interval")
        if not interval:
            return _binance_missing("interval")
        step = _BINANCE_INTERVALS.get(interval)
        if step is None:
            return json_reply(400, {"code": -1120, "msg": "Invalid interval."})
        if self.server.is_unknown(symbol, _binance_split(symbol)[0]):
            return json_reply(400, {"code": -1121, "msg": "Invalid symbol."})
        limit = int_param(req.params, "limit", 500) or 500
        if not 1 <= limit <= 1000:
            return json_reply(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
        start_ms = int_param(req.params, "startTime")
        end_ms = int_param(req.params, "endTime")
        offset = self._binance_tz_offset(req.get("timeZone"))
        if offset is None:
            return json_reply(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
        now = self.server.now()
        end = min(now, end_ms / 1000) if end_ms is not None else now
        opens = self._binance_open_times(step, start_ms, end, limit, offset)
        p = _binance_profile(symbol)
        rows = []
        for t in opens:
            length = (add_months(datetime.fromtimestamp(t, UTC), -step).timestamp() - t) if step < 0 else step
            o, h, lo, c, v = p.bar(t, length)
            mid = (o + c) / 2
            taker = 0.35 + 0.3 * unit_hash(p.seed ^ 0x77, int(t))
            rows.append(
                [
                    int(t * 1000),
                    num_text(o, req.nan),
                    num_text(h, req.nan),
                    num_text(lo, req.nan),
                    num_text(c, req.nan),
                    num_text(v, False),
                    int((t + length) * 1000) - 1,
                    num_text(v * mid, False),
                    int(50 + v * 10 % 100_000),
                    num_text(v * taker, False),
                    num_text(v * taker * mid, False),
                    "0",
                ]
            )
        return json_reply(200, rows)

    @staticmethod
    def _binance_tz_offset(raw: str | None) -> int | None:
        """timeZone as seconds east of UTC: "0", "8", "-5", "+05:30"; None if malformed."""
        if raw is None or raw == "":
            return 0
        match = re.fullmatch(r"([+-]?)(\d{1,2})(?::(\d{2}))?", raw)
        if match is None:
            return None
        sign = -1 if match.group(1) == "-" else 1
        return sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60)

    @staticmethod
    def _binance_open_times(step: int, start_ms: int | None, end: float, limit: int, offset: int) -> list[float]:
        if step < 0:
            if start_ms is not None:
                times = month_starts(start_ms / 1000, end + 1, -step)
                return times[:limit]
            first = add_months(datetime.fromtimestamp(end, UTC), -limit).timestamp()
            return month_starts(first, end + 1, -step)[-limit:]
        if step == 7 * DAY:
            offset += 4 * DAY  # Binance weeks open on Monday 00:00
        if start_ms is not None:
            return [float(t) for t in aligned_times(step, start_ms / 1000, end + 1e-3, offset=offset, limit=limit)]
        last = math.floor((end - offset) / step) * step + offset
        return [float(last - (limit - 1 - i) * step) for i in range(limit)]
