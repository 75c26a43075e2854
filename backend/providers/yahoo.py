"""Yahoo Finance (unofficial): v7 batch quotes behind a cookie + crumb, v8 chart bars one symbol per call.

Identifiers are Yahoo tickers (``AAPL``, ``BRK-B``, ``BTC-USD``, ``^GSPC``, ``EURUSD=X``) and
``Quote.symbol`` is the ticker passed in. There is no API key: the v7 quote endpoint wants a session
cookie and a crumb fetched from ``/v1/test/getcrumb``; both are kept on the client instance, never
logged, and a 401 (``Invalid Crumb``/``Invalid Cookie``) refreshes them once per call.

The API is undocumented; the shapes follow providers.md and may change without notice.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from backend.providers.base import ProviderClient
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderError,
    ProviderThrottledError,
    UnknownSymbolError,
)
from backend.providers.http import (
    check_base_url,
    join_url,
    path_segment,
    request_text,
    strip_control,
)
from backend.providers.models import Bar, Quote, QuoteBatch, Rejected
from backend.providers.validation import (
    INTERVAL_SECONDS,
    TICKER,
    Clock,
    InvalidRecordError,
    check_bar,
    check_interval,
    check_limit,
    floor_to_interval,
    from_epoch,
    keep_last_per_timestamp,
    map_batch,
    optional_decimal,
    split_symbols,
    to_decimal,
    utc_now,
)

logger = logging.getLogger(__name__)

# getcrumb answers "too many requests" to clients without a browser-like User-Agent.
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
# Neutral interval -> Yahoo's spelling.
INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d", "1w": "1wk"}
MAX_BARS = 5000
# Yahoo serves 1m data for ~8 days back and other intraday intervals for ~60 days.
_LOOKBACK_CAP = {"1m": timedelta(days=7), "intraday": timedelta(days=59)}
_CRUMB_THROTTLE_PAUSE = 60.0
_CHART_COLUMNS = ("open", "high", "low", "close", "volume")
_CRUMB = re.compile(r"[A-Za-z0-9./_\-]{1,64}")
# RFC 6265 cookie-name (a token) and cookie-octets: no controls, spaces, quotes, commas, ; or backslash.
_COOKIE_PAIR = re.compile(r"([A-Za-z0-9!#$%&'*+.^_`|~\-]{1,64})=([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{0,4096})")


class YahooClient(ProviderClient):
    """Yahoo Finance client: batched quotes (cookie + crumb) and chart bars."""

    name = "yahoo"
    # No documented maximum; 50 tickers keep the URL well under any proxy limit.
    batch_limit = 50

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        cookie_url: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        # Yahoo has no key; accepted for a uniform constructor and never sent.
        super().__init__(http, base_url=base_url, api_key=api_key, clock=clock)
        # Where the session cookie comes from (yfinance's "basic" strategy); defaults to the query host.
        self._cookie_url = check_base_url(cookie_url) if cookie_url else self._base_url + "/"
        self._cookie: str | None = None
        self._crumb: str | None = None
        self._session_lock = threading.Lock()

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Fetch v7 quotes, ``batch_limit`` tickers per request; tickers Yahoo omits become ``Rejected``."""
        # Reference (unofficial API, no vendor docs): https://github.com/ranaroussi/yfinance/blob/main/yfinance/data.py
        refreshed = False

        def fetch(batch: Sequence[str]) -> tuple[list[Quote], list[Rejected]]:
            nonlocal refreshed
            session = self._current_session()
            try:
                raw = self._quote_request(batch, session)
            except InvalidKeyError:
                # The crumb or cookie expired (Yahoo rotates them); fetch new ones once per call and retry.
                # Requests of one call may run at once: only the first to see this session refused drops it.
                with self._session_lock:
                    if (self._cookie, self._crumb) == session:
                        if refreshed:
                            raise
                        logger.info("yahoo crumb refused; refreshing it once")
                        self._cookie = self._crumb = None
                        refreshed = True
                raw = self._quote_request(batch, self._current_session())
            return _map_quotes(raw, batch, now=self._clock())

        return self._quotes_in_batches(symbols, pattern=TICKER, fetch=fetch)

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Fetch up to ``limit`` chart bars for one ticker, oldest first, timestamps floored (UTC)."""
        # Reference (unofficial API, no vendor docs): https://github.com/ranaroussi/yfinance/blob/main/yfinance/scrapers/history.py
        split = split_symbols([symbol], pattern=TICKER)
        if split[1]:
            raise UnknownSymbolError(split[1][0].reason, provider=self.name)
        check_interval(interval, INTERVALS)
        check_limit(limit, maximum=MAX_BARS)
        now = self._clock()
        params = {
            "interval": INTERVALS[interval],
            "period1": str(int(_period_start(now, interval, limit).timestamp())),
            "period2": str(int(now.timestamp())),
            "includePrePost": "false",
        }
        raw = self._get_json(
            join_url(self._base_url, f"/v8/finance/chart/{path_segment(symbol)}"),
            params=params,
            headers={"User-Agent": BROWSER_USER_AGENT},
            error_hook=self._chart_error_hook,
        )
        return keep_last_per_timestamp(_to_bars(raw, symbol=symbol, interval=interval, now=now), limit)

    # --- cookie + crumb -----------------------------------------------------------------------------

    def _current_session(self) -> tuple[str, str]:
        """The (cookie, crumb) to send, fetched first if there is none (one fetch however many ask at once)."""
        with self._gate(), self._session_lock:
            return self._session()

    def _quote_request(self, batch: Sequence[str], session: tuple[str, str]) -> Any:
        cookie, crumb = session
        params = {"symbols": ",".join(batch), "crumb": crumb}
        return self._get_json(
            join_url(self._base_url, "/v7/finance/quote"), params=params, headers=self._session_headers(cookie)
        )

    def _session(self) -> tuple[str, str]:
        """Return the cached (cookie, crumb), fetching them first if needed (two requests)."""
        if self._crumb is not None and self._cookie is not None:
            return self._cookie, self._crumb
        # Reference (cookie + crumb flow, _get_cookie_basic): https://github.com/ranaroussi/yfinance/blob/main/yfinance/data.py
        response, _ = request_text(
            self._http,
            "GET",
            self._cookie_url,
            provider=self.name,
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "text/html,*/*"},
            # The cookie host answers 404 (fc.yahoo.com) or a redirect while still setting the cookie.
            accept_status=range(200, 500),
        )
        cookie = _cookie_header(response.headers.get_list("set-cookie"))
        _, text = request_text(
            self._http,
            "GET",
            join_url(self._base_url, "/v1/test/getcrumb"),
            provider=self.name,
            headers=self._session_headers(cookie),
            max_bytes=4096,
        )
        self._cookie, self._crumb = cookie, _check_crumb(text)
        return self._cookie, self._crumb

    @staticmethod
    def _session_headers(cookie: str) -> dict[str, str]:
        headers = {"User-Agent": BROWSER_USER_AGENT}
        if cookie:
            headers["Cookie"] = cookie
        return headers

    def _chart_error_hook(self, status: int, body: Any, url: str) -> ProviderError | None:
        error = _chart_error(body)
        if error is None or status >= 500 or status == 429:
            return None
        return _chart_error_to_exception(error, url)


def _cookie_header(set_cookie: list[str]) -> str:
    """Keep only ``name=value`` of each Set-Cookie; attributes and odd characters are dropped."""
    pairs = []
    for line in set_cookie:
        match = _COOKIE_PAIR.fullmatch(line.split(";", 1)[0].strip())
        if match:
            pairs.append(f"{match.group(1)}={match.group(2)}")
    return "; ".join(pairs)


def _check_crumb(text: str) -> str:
    """Validate the getcrumb body: a short token, not HTML and not a throttle message."""
    crumb = text.strip()
    if "too many requests" in crumb.lower():
        # Yahoo names no time; a short pause keeps every worker from hammering getcrumb meanwhile.
        raise ProviderThrottledError(
            "yahoo: getcrumb is throttled (Too Many Requests)", provider="yahoo", retry_after=_CRUMB_THROTTLE_PAUSE
        )
    if crumb.startswith("<"):
        raise MalformedReplyError("yahoo: getcrumb returned an HTML page, not a crumb", provider="yahoo")
    if _CRUMB.fullmatch(crumb) is None:
        raise MalformedReplyError("yahoo: getcrumb returned something that is not a crumb", provider="yahoo")
    return crumb


def _chart_error(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and isinstance(body.get("chart"), dict):
        error = body["chart"].get("error")
        if isinstance(error, dict):
            return error
    return None


def _chart_error_to_exception(error: dict[str, Any], url: str) -> ProviderError:
    code = strip_control(error.get("code", ""), 40)
    description = strip_control(error.get("description", ""), 160)
    if code == "Not Found":
        return UnknownSymbolError(f"yahoo: {description or 'symbol not found'} ({url})", provider="yahoo")
    return PermanentProviderError(f"yahoo: chart error {code}: {description} ({url})", provider="yahoo")


def _period_start(now: datetime, interval: str, limit: int) -> datetime:
    """How far back to ask so ``limit`` bars are likely covered (markets close nights and weekends)."""
    span = timedelta(seconds=INTERVAL_SECONDS[interval] * limit)
    if interval in ("1d", "1w"):
        return now - span * 3 / 2 - timedelta(days=7)
    cap = _LOOKBACK_CAP["1m"] if interval == "1m" else _LOOKBACK_CAP["intraday"]
    return now - min(span * 4, cap)


def _map_quotes(raw: Any, batch: Sequence[str], *, now: datetime | None) -> tuple[list[Quote], list[Rejected]]:
    """Turn a v7 ``quoteResponse`` into quotes; tickers Yahoo silently omitted are rejected."""
    response = raw.get("quoteResponse") if isinstance(raw, dict) else None
    if not isinstance(response, dict) or not isinstance(response.get("result"), list):
        raise MalformedReplyError("yahoo: quote reply has no quoteResponse.result list", provider="yahoo")
    by_symbol = {row.get("symbol"): row for row in response["result"] if isinstance(row, dict)}
    return map_batch(
        batch,
        by_symbol.get,
        lambda _, row: _to_quote(row, now=now),
        provider="yahoo",
        missing="unknown symbol (absent from the reply)",
    )


def _to_quote(raw: dict[str, Any], *, now: datetime | None = None) -> Quote:
    """Map one v7 quote object; ``volume_24h`` carries the session volume (``regularMarketVolume``)."""
    symbol = raw.get("symbol")
    if not isinstance(symbol, str):
        raise InvalidRecordError("symbol missing")
    currency = raw.get("currency")
    return Quote(
        symbol=symbol,
        price=to_decimal(raw.get("regularMarketPrice"), field="regularMarketPrice", positive=True),
        timestamp=from_epoch(raw.get("regularMarketTime"), unit="s", now=now),
        source="yahoo",
        change_24h_pct=optional_decimal(
            raw.get("regularMarketChangePercent"), field="regularMarketChangePercent", allow_negative=True
        ),
        volume_24h=optional_decimal(raw.get("regularMarketVolume"), field="regularMarketVolume"),
        currency=currency if isinstance(currency, str) and currency.isalpha() else "USD",
    )


def _to_bars(raw: Any, *, symbol: str, interval: str, now: datetime | None) -> list[Bar]:
    """Map a v8 chart reply to bars; rows with a null or invalid field are dropped (halts, partial bars)."""
    error = _chart_error(raw)
    if error is not None:
        raise _chart_error_to_exception(error, "chart")
    try:
        result = raw["chart"]["result"][0]
        quote = result["indicators"]["quote"][0]
    except (KeyError, IndexError, TypeError):
        raise MalformedReplyError("yahoo: chart reply lacks result/indicators", provider="yahoo") from None
    if not isinstance(quote, dict):
        raise MalformedReplyError("yahoo: chart quote is not an object", provider="yahoo")
    timestamps = result.get("timestamp") or []
    columns = [quote.get(name) for name in _CHART_COLUMNS]
    if not timestamps and all(not column for column in columns):
        # A window without a trade (1-minute bars over a weekend, a holiday) comes without "timestamp"
        # and with an empty quote object: no bars, which is an answer, not a malformed reply.
        logger.info("yahoo has no %s bars for %s in the window asked for", interval, symbol)
        return []
    if not isinstance(timestamps, list) or not all(isinstance(col, list) for col in columns):
        raise MalformedReplyError("yahoo: chart columns are not lists", provider="yahoo")
    bars: list[Bar] = []
    dropped = 0
    for i, ts in enumerate(timestamps):
        try:
            values = [col[i] if i < len(col) else None for col in columns]
            opened = from_epoch(ts, unit="s", now=now)
            bars.append(
                check_bar(
                    Bar(
                        symbol=symbol,
                        interval=interval,
                        timestamp=floor_to_interval(opened, interval),
                        open=to_decimal(values[0], field="open"),
                        high=to_decimal(values[1], field="high"),
                        low=to_decimal(values[2], field="low"),
                        close=to_decimal(values[3], field="close"),
                        volume=to_decimal(values[4], field="volume"),
                        source="yahoo",
                    )
                )
            )
        except InvalidRecordError:
            dropped += 1
    if dropped:
        logger.info("yahoo dropped %s incomplete or invalid bars for %s", dropped, symbol)
    return bars
