"""Fake Alpha Vantage: GLOBAL_QUOTE, TIME_SERIES_DAILY and REALTIME_BULK_QUOTES (errors as HTTP 200)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from backend.fake_provider.market import (
    NEW_YORK,
    is_trading_day,
    latest_session_day,
    num_text,
    profile,
    session_close_ts,
    session_open_ts,
    unit_hash,
)
from backend.fake_provider.wire import ApiRequest, Reply, comma_list, json_reply, text_reply

if TYPE_CHECKING:
    from backend.fake_provider.server import FakeProviderServer

_AV_SYMBOL_RE = re.compile(r"^[A-Za-z0-9.\-]{1,20}$")


class AlphaVantageApi:
    """The fake Alpha Vantage endpoints; reads the server's clock, options and unknown symbols."""

    provider = "alphavantage"

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def handle(self, req: ApiRequest) -> Reply:
        if req.path not in ("/query", "/query/"):
            return text_reply(404, "Not Found")
        function = (req.get("function") or "").upper()
        if function == "GLOBAL_QUOTE":
            return self._av_global_quote(req)
        if function == "TIME_SERIES_DAILY":
            return self._av_daily(req)
        if function == "REALTIME_BULK_QUOTES":
            return self._av_bulk(req)
        if not function:
            return json_reply(
                200,
                {
                    "Error Message": "Invalid API call. Please retry or visit the documentation "
                    "(https://www.alphavantage.co/documentation/)."
                },
            )
        return json_reply(200, {"Error Message": f"This API function ({function}) does not exist."})

    def _av_invalid_call(self, function: str) -> Reply:
        return json_reply(
            200,
            {
                "Error Message": "Invalid API call. Please retry or visit the documentation "
                f"(https://www.alphavantage.co/documentation/) for {function}."
            },
        )

    def _av_known(self, symbol: str | None) -> bool:
        return bool(symbol) and bool(_AV_SYMBOL_RE.match(symbol or "")) and not self.server.is_unknown(symbol or "")

    def _av_global_quote(self, req: ApiRequest) -> Reply:
        symbol = (req.get("symbol") or "").upper()
        if not symbol:
            return self._av_invalid_call("GLOBAL_QUOTE")
        if not self._av_known(symbol):
            return json_reply(200, {"Global Quote": {}})
        p = profile(symbol)
        nan = req.nan
        day = latest_session_day(self.server.now())
        return json_reply(
            200,
            {
                "Global Quote": {
                    "01. symbol": symbol,
                    "02. open": num_text(p.open, nan, 4),
                    "03. high": num_text(p.high, nan, 4),
                    "04. low": num_text(p.low, nan, 4),
                    "05. price": num_text(p.price, nan, 4),
                    "06. volume": str(int(p.volume)),
                    "07. latest trading day": day.isoformat(),
                    "08. previous close": num_text(p.prev_close, nan, 4),
                    "09. change": num_text(p.change, nan, 4),
                    "10. change percent": ("NaN" if nan else f"{p.change_pct:.4f}") + "%",
                }
            },
        )

    def _av_daily(self, req: ApiRequest) -> Reply:
        symbol = (req.get("symbol") or "").upper()
        if not self._av_known(symbol):
            return self._av_invalid_call("TIME_SERIES_DAILY")
        size = (req.get("outputsize") or "compact").lower()
        count = 100 if size != "full" else 5200
        p = profile(symbol)
        day = latest_session_day(self.server.now())
        series: dict[str, dict[str, str]] = {}
        while len(series) < count:
            if is_trading_day(day):
                opens, closes = session_open_ts(day), session_close_ts(day)
                o, h, lo, c, v = p.bar(opens, int(closes - opens))
                series[day.isoformat()] = {
                    "1. open": num_text(o, req.nan, 4),
                    "2. high": num_text(h, req.nan, 4),
                    "3. low": num_text(lo, req.nan, 4),
                    "4. close": num_text(c, req.nan, 4),
                    "5. volume": str(int(v)),
                }
            day -= timedelta(days=1)
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": next(iter(series)),
            "4. Output Size": "Full size" if size == "full" else "Compact",
            "5. Time Zone": "US/Eastern",
        }
        return json_reply(200, {"Meta Data": meta, "Time Series (Daily)": series})

    def _av_bulk(self, req: ApiRequest) -> Reply:
        if not self.server.alphavantage_premium:
            return json_reply(
                200,
                {
                    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. "
                    "You may subscribe to any of the premium plans at "
                    "https://www.alphavantage.co/premium/ to instantly unlock all "
                    "premium endpoints"
                },
            )
        symbols = [s.upper() for s in comma_list(req.get("symbol"))]
        if not symbols or len(symbols) > 100:
            return self._av_invalid_call("REALTIME_BULK_QUOTES")
        now = self.server.now()
        stamp = datetime.fromtimestamp(min(now, session_close_ts(latest_session_day(now))), NEW_YORK)
        rows = []
        for symbol in symbols:
            if not self._av_known(symbol):
                continue
            p = profile(symbol)
            ext = p.price * (1 + (unit_hash(p.seed, 77) - 0.5) * 0.002)
            rows.append(
                {
                    "symbol": symbol,
                    "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S.000"),
                    "open": num_text(p.open, req.nan, 2),
                    "high": num_text(p.high, req.nan, 2),
                    "low": num_text(p.low, req.nan, 2),
                    "close": num_text(p.price, req.nan, 2),
                    "volume": str(int(p.volume)),
                    "previous_close": num_text(p.prev_close, req.nan, 2),
                    "change": num_text(p.change, req.nan, 2),
                    "change_percent": num_text(p.change_pct, req.nan, 4),
                    "extended_hours_quote": num_text(ext, req.nan, 2),
                    "extended_hours_change": num_text(ext - p.price, req.nan, 2),
                    "extended_hours_change_percent": num_text((ext / p.price - 1) * 100, req.nan, 4),
                }
            )
        return json_reply(200, {"endpoint": "Realtime Bulk Quotes", "message": "", "data": rows})
