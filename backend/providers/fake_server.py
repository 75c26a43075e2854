"""A loopback-only fake of the six market-data APIs, speaking their real wire formats.

The real httpx clients in ``backend/providers`` are pointed at this server in integration
tests, benchmarks and demos, so it follows ``docs/providers.md`` field for field: Binance
prices are strings, Yahoo bars are parallel arrays, Alpha Vantage keys are numbered labels
and its errors come back as HTTP 200, and so on. Standard library only.

URL layout: each provider lives under a path prefix that stands in for its host, so a
client's ``base_url`` is ``server.base_url("binance")`` == ``http://127.0.0.1:PORT/binance``.

==============  ==============================================================================
``/yahoo``         ``/`` and ``/fc`` (sets the ``A3`` cookie), ``/v1/test/getcrumb``,
                   ``/v7/finance/quote``, ``/v8/finance/chart/{symbol}``
``/binance``       ``/api/v3/ticker/price``, ``/api/v3/ticker/24hr``, ``/api/v3/klines``,
                   ``/api/v3/uiKlines``, ``/api/v3/exchangeInfo``, ``/api/v3/ping``, ``/api/v3/time``
``/coingecko``     ``/api/v3/simple/price``, ``/api/v3/coins/markets``, ``/api/v3/coins/list``,
                   ``/api/v3/coins/{id}/market_chart[/range]``, ``/api/v3/ping``
                   (the ``/api/v3`` part is optional: the documented base URL includes it)
``/alphavantage``  ``/query?function=GLOBAL_QUOTE|TIME_SERIES_DAILY|REALTIME_BULK_QUOTES``
``/coinmarketcap`` ``/v1/cryptocurrency/quotes/latest``, ``/v2/cryptocurrency/quotes/latest``,
                   ``/v1/cryptocurrency/map``
``/newsapi``       ``/v2/everything``, ``/v2/top-headlines`` (the ``/v2`` part is optional)
==============  ==============================================================================

Data is generated, not stored: every symbol's level is seeded by a hash of its base asset
(BTC is the same coin on Binance, Yahoo's ``BTC-USD``, CoinGecko's ``bitcoin`` and CMC),
quotes are constant per symbol and bars are a deterministic function of (symbol, bar time),
so the same request gives the same numbers on every run. Pass ``now=`` to freeze the clock
too. Every well-formed symbol is known, except:

* symbols passed as ``unknown_symbols`` (or added later), matched case-insensitively against
  the identifier as sent *or* its base asset (``"BTC"`` hides ``BTCUSDT``, ``BTC-USD``, ...);
* identifiers whose upper-cased form starts with ``UNKNOWN`` or ``ZZZ`` (``ZZZUSDT``,
  ``unknown-coin``), CoinMarketCap numeric ids >= 900000000, and NewsAPI queries containing
  such a word.

Unknown symbols get each API's own answer: Yahoo v7 omits them and chart answers 404,
Binance fails the whole batch with -1121, CoinGecko omits the id (404 on ``/coins/{id}``),
Alpha Vantage answers ``{"Global Quote": {}}`` or an ``Error Message``, CoinMarketCap
answers 400 unless ``skip_invalid=true``, NewsAPI finds zero articles.

Faults are injected per provider (one active fault per provider; setting replaces it) with
``server.set_fault(...)`` or ``POST /_control/faults``; see ``FAULT_KINDS``. Every provider
request is recorded (secret query params masked) in memory and optionally appended as a JSON
line to ``log_file``.

Run it by hand with ``python -m backend.providers.fake_server --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from email.message import Message
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

PROVIDERS = ("yahoo", "binance", "coingecko", "alphavantage", "coinmarketcap", "newsapi")

FAULT_KINDS = (
    "status_429",  # 429 + Retry-After + the provider's own 429 body
    "status_429_no_retry_after",  # the same without Retry-After
    "status_500",
    "status_503",
    "hang",  # sleep `seconds` (<= 30) before answering normally
    "truncated_json",  # the normal 200 body cut in half (Content-Length matches the cut body)
    "html_error",  # a Cloudflare-like HTML page, status 502 unless `status` is given
    "nan_values",  # NaN in every price ("NaN" where the API uses strings)
    "throttle_body",  # the provider's distinctive throttle reply, see _throttle_reply
    "bad_key",  # the provider's invalid-key reply
)
MAX_HANG_SECONDS = 30.0
UNKNOWN_PREFIXES = ("UNKNOWN", "ZZZ")
CMC_UNKNOWN_ID_FLOOR = 900_000_000

# Query params whose values never reach the request log.
_SECRET_PARAMS = frozenset({"apikey", "api_key", "x_cg_demo_api_key", "x_cg_pro_api_key", "cmc_pro_api_key", "crumb"})
_KEYED_PROVIDERS = ("coingecko", "alphavantage", "coinmarketcap", "newsapi")
_NY = ZoneInfo("America/New_York")
_LONDON = ZoneInfo("Europe/London")
_DAY = 86400
_MONTH = -1  # sentinel "step" for calendar-month intervals; -3 is a quarter
_MAX_BARS = 50_000
_MASK64 = (1 << 64) - 1
_TAU = 2 * math.pi
# (period seconds, log-amplitude) of the slow waves every generated price rides on.
_WAVES = ((9.3 * _DAY, 0.045), (1.7 * _DAY, 0.015), (3.1 * 3600, 0.004))


# --------------------------------------------------------------------------------------------
# Generated market data
# --------------------------------------------------------------------------------------------

# Realistic levels for well-known assets so demos look plausible; everything else is hashed.
_ANCHORS = {
    "BTC": 96480.12,
    "ETH": 3586.44,
    "USDT": 1.0,
    "XRP": 1.45,
    "BNB": 652.3,
    "SOL": 235.12,
    "USDC": 1.0,
    "DOGE": 0.4123,
    "ADA": 1.05,
    "TRX": 0.2011,
    "AVAX": 45.2,
    "LINK": 19.84,
    "DOT": 8.91,
    "LTC": 102.5,
    "DAI": 1.0,
    "AAPL": 237.33,
    "MSFT": 423.46,
    "IBM": 229.41,
    "GOOGL": 169.23,
    "AMZN": 207.89,
    "NVDA": 138.25,
    "TSLA": 345.16,
    "META": 574.32,
    "^GSPC": 6032.38,
    "^DJI": 44910.65,
    "^IXIC": 19218.17,
}
_STABLE = frozenset({"USDT", "USDC", "DAI", "BUSD", "FDUSD", "TUSD"})
# USD value of one unit, for conversions (vs_currencies, convert=, FX pairs, quote assets).
_FIAT_USD = {
    "USD": 1.0,
    "EUR": 1.0562,
    "GBP": 1.2741,
    "JPY": 0.00664,
    "CHF": 1.1342,
    "CAD": 0.7132,
    "AUD": 0.6512,
    "TRY": 0.0288,
    "BRL": 0.1702,
}
# symbol -> (coingecko id, name, coinmarketcap id, cmc slug, rank)
_COINS = {
    "BTC": ("bitcoin", "Bitcoin", 1, "bitcoin", 1),
    "ETH": ("ethereum", "Ethereum", 1027, "ethereum", 2),
    "USDT": ("tether", "Tether USDt", 825, "tether", 3),
    "XRP": ("ripple", "XRP", 52, "xrp", 4),
    "BNB": ("binancecoin", "BNB", 1839, "bnb", 5),
    "SOL": ("solana", "Solana", 5426, "solana", 6),
    "USDC": ("usd-coin", "USDC", 3408, "usd-coin", 7),
    "DOGE": ("dogecoin", "Dogecoin", 74, "dogecoin", 8),
    "ADA": ("cardano", "Cardano", 2010, "cardano", 9),
    "TRX": ("tron", "TRON", 1958, "tron", 10),
    "AVAX": ("avalanche-2", "Avalanche", 5805, "avalanche", 11),
    "LINK": ("chainlink", "Chainlink", 1975, "chainlink", 12),
    "DOT": ("polkadot", "Polkadot", 6636, "polkadot-new", 13),
    "LTC": ("litecoin", "Litecoin", 2, "litecoin", 14),
    "DAI": ("dai", "Dai", 4943, "multi-collateral-dai", 20),
}
# Circulating supply of the curated coins, so market caps and dominance look plausible.
_SUPPLY = {"BTC": 19.79e6, "ETH": 120.4e6, "USDT": 133.9e9, "XRP": 57.2e9, "BNB": 144.0e6, "SOL": 475.0e6,
           "USDC": 39.6e9, "DOGE": 147.3e9, "ADA": 35.9e9, "TRX": 86.3e9, "AVAX": 409.0e6,
           "LINK": 638.1e6, "DOT": 1.52e9, "LTC": 75.4e6, "DAI": 5.36e9}  # fmt: skip
_CG_TO_SYMBOL = {row[0]: sym for sym, row in _COINS.items()}
_CMC_ID_TO_SYMBOL = {row[2]: sym for sym, row in _COINS.items()}
_CMC_SLUG_TO_SYMBOL = {row[3]: sym for sym, row in _COINS.items()}
_NAMES = {
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corporation",
    "IBM": "International Business Machines",
    "GOOGL": "Alphabet Inc.",
    "AMZN": "Amazon.com, Inc.",
    "NVDA": "NVIDIA Corporation",
    "TSLA": "Tesla, Inc.",
    "META": "Meta Platforms, Inc.",
    "^GSPC": "S&P 500",
    "^DJI": "Dow Jones Industrial Average",
    "^IXIC": "NASDAQ Composite",
}


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _unit(seed: int, k: int) -> float:
    """A uniform [0, 1) draw for (seed, k): splitmix64, so any bar is O(1) with no state."""
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class _Profile:
    """Everything generated about one asset: today's quote plus a price path over time."""

    asset: str
    seed: int
    price: float
    prev_close: float
    open: float
    high: float
    low: float
    volume: float  # base units per day
    supply: float
    amp: float  # 1.0 for normal assets, tiny for stablecoins
    phases: tuple[float, float, float]

    @property
    def change(self) -> float:
        return self.price - self.prev_close

    @property
    def change_pct(self) -> float:
        return (self.price / self.prev_close - 1.0) * 100.0

    def scaled(self, factor: float) -> _Profile:
        return dataclasses.replace(
            self,
            price=self.price * factor,
            prev_close=self.prev_close * factor,
            open=self.open * factor,
            high=self.high * factor,
            low=self.low * factor,
        )

    def price_at(self, t: float) -> float:
        x = 0.0
        for (period, amp), phase in zip(_WAVES, self.phases, strict=True):
            x += amp * math.sin(_TAU * t / period + phase)
        x += 0.003 * (_unit(self.seed, int(t)) - 0.5)
        return self.price * math.exp(x * self.amp)

    def bar(self, t: float, length: float) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, base volume) of the bar opening at ``t``."""
        o = self.price_at(t)
        c = self.price_at(t + length)
        k = int(t)
        spread = (0.001 + 0.01 * min(1.0, length / _DAY)) * self.amp
        h = max(o, c) * (1 + spread * _unit(self.seed ^ 0x51, k))
        lo = min(o, c) * (1 - spread * _unit(self.seed ^ 0x52, k))
        v = self.volume * (length / _DAY) * (0.5 + _unit(self.seed ^ 0x53, k))
        return o, h, lo, c, v


@lru_cache(maxsize=65536)
def _profile(asset: str) -> _Profile:
    seed = _hash64(asset)
    u = [_unit(seed, i) for i in range(8)]
    stable = asset in _STABLE
    amp = 0.02 if stable else 1.0
    price = _ANCHORS.get(asset) or round(10 ** (3 * u[0]), 2)
    prev_close = price / (1 + (u[1] - 0.5) * 0.08 * amp)
    open_ = prev_close * (1 + (u[2] - 0.5) * 0.004 * amp)
    return _Profile(
        asset=asset,
        seed=seed,
        price=price,
        prev_close=prev_close,
        open=open_,
        high=max(price, open_) * (1 + u[3] * 0.015 * amp),
        low=min(price, open_) * (1 - u[4] * 0.015 * amp),
        volume=10 ** (4 + 3 * u[5]),
        supply=_SUPPLY.get(asset) or 10 ** (6 + 4 * u[6]),
        amp=amp,
        phases=(_TAU * u[7], _TAU * _unit(seed, 8), _TAU * _unit(seed, 9)),
    )


def _usd_value(asset: str) -> float:
    return _FIAT_USD[asset] if asset in _FIAT_USD else _profile(asset).price


@lru_cache(maxsize=65536)
def _pair_profile(base: str, quote: str) -> _Profile:
    """A ``base`` priced in ``quote`` (ETHBTC, BTC-EUR, EURUSD=X)."""
    if base in _FIAT_USD and quote in _FIAT_USD:
        return _fx_profile(base, quote)
    return _profile(base).scaled(1.0 / _usd_value(quote))


def _fx_profile(base: str, quote: str) -> _Profile:
    """FX: the path belongs to the pair, the level comes from the two currencies, moves are small."""
    p = _profile(base + quote + "=X")
    rate = _FIAT_USD[base] / _usd_value(quote)
    quiet = dataclasses.replace(p, amp=0.1)
    return quiet.scaled(rate / quiet.price)


def _iso_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_s(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _num(x: float, nan: bool, digits: int = 2) -> float:
    return math.nan if nan else round(x, digits)


def _str(x: float, nan: bool, digits: int = 8) -> str:
    return "NaN" if nan else f"{x:.{digits}f}"


def _price_digits(price: float) -> int:
    return 2 if price >= 1 else 6


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=1)


def _months_back(moment: datetime, months: int) -> datetime:
    """``moment`` shifted back by whole calendar months, the day clamped to the target month."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


def _month_starts(start: float, end: float, months: int, tz: Any = UTC) -> list[float]:
    """Epoch seconds of each ``months``-long calendar bucket start in [start, end)."""
    first = datetime.fromtimestamp(start, tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = first.replace(month=(first.month - 1) // months * months + 1)
    out = []
    moment = first
    while moment.timestamp() < end and len(out) < _MAX_BARS:
        if moment.timestamp() >= start:
            out.append(moment.timestamp())
        moment = _add_months(moment, months)
    return out


def _aligned_times(step: int, start: float, end: float, *, offset: int = 0, limit: int = _MAX_BARS) -> list[int]:
    """Open times of fixed-size buckets (aligned to epoch + ``offset``) in [start, end)."""
    first = math.ceil((start - offset) / step) * step + offset
    count = max(0, min(limit, math.ceil((end - first) / step)))
    return [int(first + i * step) for i in range(count)]


def _latest_session_day(now: float) -> date:
    """The New York trading day whose session is open now or closed most recently (no holidays)."""
    local = datetime.fromtimestamp(now, _NY)
    day = local.date()
    if local.time() < dtime(9, 30):
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _ny_ts(day: date, at: dtime) -> float:
    return datetime.combine(day, at, _NY).timestamp()


class _BadParam(ValueError):
    """A malformed query parameter; each provider turns it into its own 400 shape."""


def _int_param(params: dict[str, list[str]], name: str, default: int | None = None) -> int | None:
    raw = _param(params, name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _BadParam(name) from exc


def _param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _comma_list(raw: str | None) -> list[str]:
    if not raw:
        return []
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _truthy(raw: str | None) -> bool:
    return (raw or "").lower() == "true"


# --------------------------------------------------------------------------------------------
# Replies, faults, request log
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> _Reply:
    return _Reply(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json", list(headers))


def _text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> _Reply:
    return _Reply(status, text.encode(), content_type)


@dataclass(slots=True)
class Fault:
    """One fault armed for a provider; ``remaining`` None means until cleared."""

    provider: str
    kind: str
    remaining: int | None = None
    path: str | None = None  # only requests whose provider-relative path starts with this
    seconds: float = 10.0  # hang
    retry_after: int = 1  # status_429 (and Binance's 418 throttle_body)
    status: int | None = None  # overrides the status of html_error / throttle_body
    variant: str | None = None  # throttle_body: Alpha Vantage "note"/"information", CMC "1008".."1011"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FAULT_VARIANTS = {"alphavantage": ("information", "note"), "coinmarketcap": ("1008", "1009", "1010", "1011")}


def _validate_fault(fault: Fault) -> None:
    if fault.provider not in PROVIDERS:
        raise ValueError(f"unknown provider {fault.provider!r}; expected one of {', '.join(PROVIDERS)}")
    if fault.kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {fault.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    if fault.remaining is not None and (
        isinstance(fault.remaining, bool) or not isinstance(fault.remaining, int) or fault.remaining < 1
    ):
        raise ValueError("count must be a positive integer or null (until cleared)")
    if not 0 < float(fault.seconds) <= MAX_HANG_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_HANG_SECONDS:g}]")
    if isinstance(fault.retry_after, bool) or not isinstance(fault.retry_after, int) or fault.retry_after < 0:
        raise ValueError("retry_after must be a non-negative integer")
    if fault.status is not None and not (isinstance(fault.status, int) and 100 <= fault.status <= 599):
        raise ValueError("status must be an HTTP status code")
    if fault.kind == "nan_values" and fault.provider == "newsapi":
        raise ValueError("nan_values does not apply to newsapi (it serves no prices)")
    if fault.variant is not None and fault.variant not in _FAULT_VARIANTS.get(fault.provider, ()):
        allowed = _FAULT_VARIANTS.get(fault.provider, ())
        raise ValueError(f"variant {fault.variant!r} not valid for {fault.provider}; allowed: {allowed}")


def _mask_query(query: str) -> str:
    """The raw query string with secret values replaced, everything else byte-for-byte."""
    if not query:
        return ""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if sep and unquote_plus(name).lower() in _SECRET_PARAMS:
            parts[i] = f"{name}=***"
    return "&".join(parts)


def _cookies(headers: Message) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in headers.get_all("Cookie") or ():
        for item in header.split(";"):
            name, sep, value = item.strip().partition("=")
            if sep:
                jar[name] = value
    return jar


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: FakeProviderServer) -> None:
        self.app = app
        self.live_sockets: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("Fake provider server failed while serving %s", client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so httpx reuses connections
    server_version = "FakeProviderServer/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 120  # idle keep-alive connections are dropped after this
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.live_lock:
            self.server.live_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.live_lock:
                self.server.live_sockets.discard(self.connection)

    def do_GET(self) -> None:
        self.server.app._serve(self)

    def do_POST(self) -> None:
        self.server.app._serve(self)

    def do_DELETE(self) -> None:
        self.server.app._serve(self)

    def do_PUT(self) -> None:
        self.server.app._serve(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("fake server: %s", format % args)


def _normalize_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"FakeProviderServer binds to loopback only (127.0.0.0/8, ::1, localhost); refusing host {host!r}"
        )
    return str(address)


Clock = Callable[[], float]


class FakeProviderServer:
    """The six fake APIs on one loopback port; use as a context manager or start()/stop().

    ``keys`` maps provider -> expected API key (coingecko, alphavantage, coinmarketcap,
    newsapi); a missing or wrong key then gets the provider's bad-key reply. Header-auth
    providers are checked on their header only unless ``allow_query_keys`` is set, so a test
    can prove the client sends the key as a header. ``now`` (epoch seconds or an aware
    datetime) freezes the clock for fully reproducible output.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keys: dict[str, str] | None = None,
        unknown_symbols: Iterable[str] = (),
        log_file: str | Path | None = None,
        now: float | datetime | None = None,
        allow_query_keys: bool = False,
        yahoo_require_crumb: bool = True,
        binance_weight_limit: int | None = None,
        alphavantage_premium: bool = True,
        newsapi_developer_plan: bool = False,
        max_logged_requests: int = 200_000,
    ) -> None:
        self.host = _normalize_host(host)
        self.port = port
        self.keys = dict(keys or {})
        for provider in self.keys:
            if provider not in _KEYED_PROVIDERS:
                raise ValueError(f"{provider!r} takes no API key here; keyed providers: {_KEYED_PROVIDERS}")
        self.log_file = Path(log_file) if log_file else None
        self.allow_query_keys = allow_query_keys
        self.yahoo_require_crumb = yahoo_require_crumb
        self.binance_weight_limit = binance_weight_limit
        self.alphavantage_premium = alphavantage_premium
        self.newsapi_developer_plan = newsapi_developer_plan
        if isinstance(now, datetime):
            if now.tzinfo is None:
                raise ValueError("now must be timezone-aware")
            now = now.timestamp()
        frozen = now
        self._clock: Clock = (lambda: frozen) if frozen is not None else time.time
        self._unknown: frozenset[str] = frozenset(s.upper() for s in unknown_symbols)
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=max_logged_requests)
        self._log_fh: TextIO | None = None
        self._yahoo_cookies: set[str] = set()
        self._secret = secrets.token_bytes(16)
        self._weight_window = 0
        self._weight_used = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._apis = _Apis(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._httpd is not None:
            raise RuntimeError("FakeProviderServer already started")
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_fh = self.log_file.open("a", encoding="utf-8")
        server_cls = _HTTPServer6 if ":" in self.host else _HTTPServer
        self._stopping.clear()
        self._httpd = server_cls((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-provider-server",
            daemon=True,
        )
        self._thread.start()
        logger.info("Fake provider server listening on %s", self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes any "hang" fault
        httpd.shutdown()
        httpd.server_close()
        with httpd.live_lock:
            live = list(httpd.live_sockets)
        for sock in live:  # drop idle keep-alive connections so clients see the server is gone
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._log_fh is not None:
                self._log_fh.close()
                self._log_fh = None
        logger.info("Fake provider server on port %s stopped", self.port)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeProviderServer is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The value to pass as a client's base_url, e.g. http://127.0.0.1:PORT/binance."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        return f"{self.url}/{provider}"

    # -- faults ------------------------------------------------------------------------------

    def set_fault(
        self,
        provider: str,
        fault: str,
        count: int | None = None,
        *,
        path: str | None = None,
        seconds: float = 10.0,
        retry_after: int = 1,
        status: int | None = None,
        variant: str | None = None,
    ) -> Fault:
        """Arm ``fault`` for the next ``count`` requests to ``provider`` (None: until cleared)."""
        armed = Fault(provider, fault, count, path, seconds, retry_after, status, variant)
        _validate_fault(armed)
        with self._lock:
            self._faults[provider] = armed
        logger.info("Fault %s armed for %s (count=%s)", fault, provider, count)
        return dataclasses.replace(armed)

    def clear_faults(self, provider: str | None = None) -> None:
        with self._lock:
            if provider is None:
                self._faults.clear()
            else:
                self._faults.pop(provider, None)

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults.values()]

    def _take_fault(self, provider: str, path: str) -> Fault | None:
        with self._lock:
            armed = self._faults.get(provider)
            if armed is None or (armed.path is not None and not path.startswith(armed.path)):
                return None
            if armed.remaining is not None:
                armed.remaining -= 1
                if armed.remaining <= 0:
                    del self._faults[provider]
            return dataclasses.replace(armed)

    # -- unknown symbols, Yahoo session ------------------------------------------------------

    def add_unknown_symbols(self, *symbols: str) -> None:
        with self._lock:
            self._unknown = self._unknown | {s.upper() for s in symbols}

    def clear_unknown_symbols(self) -> None:
        with self._lock:
            self._unknown = frozenset()

    def is_unknown(self, identifier: str, asset: str | None = None) -> bool:
        upper = identifier.upper()
        unknown = self._unknown
        return (
            upper.startswith(UNKNOWN_PREFIXES)
            or upper in unknown
            or (asset is not None and (asset.upper() in unknown or asset.upper().startswith(UNKNOWN_PREFIXES)))
        )

    def expire_yahoo_sessions(self) -> None:
        """Forget every issued Yahoo cookie, as if the crumbs expired."""
        with self._lock:
            self._yahoo_cookies = set()

    def now(self) -> float:
        return self._clock()

    # -- request log -------------------------------------------------------------------------

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Recorded provider requests, oldest first (control requests are not recorded)."""
        with self._lock:
            entries = list(self._log)
        return [e for e in entries if provider is None or e["provider"] == provider]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n" if self._log_fh is not None else ""
        with self._lock:
            self._log.append(entry)
            if self._log_fh is not None:
                self._log_fh.write(line)
                self._log_fh.flush()

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        started = time.perf_counter()
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(handler, _json(400, {"error": "bad Content-Length"}))
            handler.close_connection = True
            return
        body = handler.rfile.read(length) if length > 0 else b""
        split = urlsplit(handler.path)
        path = split.path
        if path == "/_control" or path.startswith("/_control/"):
            self._send(handler, self._control(handler.command, path, split.query, body))
            return
        provider, _, rest = path.lstrip("/").partition("/")
        fault: Fault | None = None
        key_source: str | None = None
        if provider in PROVIDERS:
            reply, fault, key_source = self._provider_reply(provider, handler.command, "/" + rest, split.query, handler)
        else:
            prefixes = ", ".join("/" + p for p in PROVIDERS)
            reply = _json(404, {"error": f"no provider at {path!r}; mount points: {prefixes}"})
            provider = None
        # Record before answering: a client that reads the log right after its reply must find its request.
        self._record(
            {
                "time": _iso_ms(time.time()),
                "provider": provider,
                "method": handler.command,
                "path": path,
                "query": _mask_query(split.query),
                "status": reply.status,
                "fault": fault.kind if fault else None,
                "key_source": key_source,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client_port": handler.client_address[1],
            }
        )
        self._send(handler, reply)

    def _send(self, handler: _Handler, reply: _Reply) -> None:
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # Expected after a "hang" fault: the client gave up before we answered.
            handler.close_connection = True

    def _provider_reply(
        self, provider: str, method: str, sub: str, query: str, handler: _Handler
    ) -> tuple[_Reply, Fault | None, str | None]:
        params = parse_qs(query, keep_blank_values=True)
        headers = handler.headers
        key_source = _key_source(provider, params, headers)
        fault = self._take_fault(provider, sub)
        nan = False
        if fault is not None:
            if fault.kind == "hang":
                logger.debug("Hanging %s%s for %ss", provider, sub, fault.seconds)
                if self._stopping.wait(fault.seconds):
                    handler.close_connection = True
            elif fault.kind == "nan_values":
                nan = True
            elif fault.kind != "truncated_json":
                return (
                    self._with_weight(provider, sub, params, _fault_reply(provider, sub, fault, self.now())),
                    fault,
                    key_source,
                )
        if method != "GET":
            return _json(405, {"error": f"{method} not allowed"}), fault, key_source
        bad_key = self._check_key(provider, params, headers)
        if bad_key is not None:
            return self._with_weight(provider, sub, params, bad_key), fault, key_source
        if provider == "binance" and self.binance_weight_limit is not None:
            throttled = self._binance_over_limit(_binance_weight(sub, params))
            if throttled is not None:
                return throttled, fault, key_source
        req = _Request(provider, sub, params, headers, nan)
        reply = self._apis.route(req)
        if fault is not None and fault.kind == "truncated_json":
            reply.body = reply.body[: max(1, len(reply.body) // 2)]
        return self._with_weight(provider, sub, params, reply), fault, key_source

    # -- keys and Binance weight -------------------------------------------------------------

    def _check_key(self, provider: str, params: dict[str, list[str]], headers: Message) -> _Reply | None:
        expected = self.keys.get(provider)
        if expected is None:
            return None
        sent = _sent_key(provider, params, headers, allow_query=self.allow_query_keys)
        if sent is not None and hmac.compare_digest(sent, expected):
            return None
        return _bad_key_reply(provider, missing=not sent, now=self.now())

    def _with_weight(self, provider: str, sub: str, params: dict[str, list[str]], reply: _Reply) -> _Reply:
        if provider != "binance":
            return reply
        weight = _binance_weight(sub, params)
        # Weight windows follow the wall clock even when the data clock is frozen.
        minute = int(time.time() // 60)
        with self._lock:
            if minute != self._weight_window:
                self._weight_window, self._weight_used = minute, 0
            self._weight_used += weight
            used = self._weight_used
        reply.headers += [("X-MBX-USED-WEIGHT-1M", str(used)), ("X-MBX-USED-WEIGHT", str(used))]
        return reply

    def _binance_over_limit(self, weight: int) -> _Reply | None:
        now = time.time()
        minute = int(now // 60)
        with self._lock:
            used = self._weight_used if minute == self._weight_window else 0
        if self.binance_weight_limit is None or used + weight <= self.binance_weight_limit:
            return None
        wait = max(1, math.ceil((minute + 1) * 60 - now))
        body = {"code": -1003, "msg": _BINANCE_1003 % self.binance_weight_limit}
        return _json(429, body, [("Retry-After", str(wait)), ("X-MBX-USED-WEIGHT-1M", str(used))])

    # -- control endpoints -------------------------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: bytes) -> _Reply:
        route = path[len("/_control") :].rstrip("/") or "/"
        params = parse_qs(query)
        provider = _param(params, "provider")
        if route == "/health" and method == "GET":
            return _json(200, {"status": "ok", "providers": list(PROVIDERS), "faults": FAULT_KINDS})
        if route == "/faults":
            if method == "GET":
                return _json(200, {"faults": self.faults()})
            if method == "DELETE":
                self.clear_faults(provider)
                return _json(200, {"faults": self.faults()})
            if method == "POST":
                try:
                    spec = json.loads(body or b"{}")
                    if not isinstance(spec, dict):
                        raise ValueError("body must be a JSON object")
                    unexpected = set(spec) - {
                        "provider",
                        "fault",
                        "count",
                        "path",
                        "seconds",
                        "retry_after",
                        "status",
                        "variant",
                    }
                    if unexpected:
                        raise ValueError(f"unexpected fields: {sorted(unexpected)}")
                    armed = self.set_fault(
                        str(spec.get("provider")),
                        str(spec.get("fault")),
                        spec.get("count"),
                        path=spec.get("path"),
                        seconds=spec.get("seconds", 10.0),
                        retry_after=spec.get("retry_after", 1),
                        status=spec.get("status"),
                        variant=spec.get("variant"),
                    )
                except (ValueError, TypeError) as exc:
                    return _json(400, {"error": str(exc)})
                return _json(200, {"fault": armed.to_dict()})
        if route == "/requests":
            if method == "GET":
                entries = self.requests(provider)
                return _json(200, {"count": len(entries), "requests": entries})
            if method == "DELETE":
                self.clear_requests()
                return _json(200, {"count": 0, "requests": []})
        if route == "/unknown":
            if method == "GET":
                return _json(200, {"symbols": sorted(self._unknown), "prefixes": UNKNOWN_PREFIXES})
            if method == "POST":
                try:
                    symbols = json.loads(body or b"{}").get("symbols")
                    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                        raise ValueError('body must be {"symbols": ["..."]}')
                except (ValueError, AttributeError) as exc:
                    return _json(400, {"error": str(exc)})
                self.add_unknown_symbols(*symbols)
                return _json(200, {"symbols": sorted(self._unknown)})
            if method == "DELETE":
                self.clear_unknown_symbols()
                return _json(200, {"symbols": []})
        if route in ("/health", "/faults", "/requests", "/unknown"):
            return _json(405, {"error": f"{method} not allowed on {path}"})
        return _json(404, {"error": f"no control endpoint {path!r}"})


def _key_source(provider: str, params: dict[str, list[str]], headers: Message) -> str | None:
    """Where the request carried its API key: "header", "query" or None."""
    names = _KEY_LOCATIONS.get(provider)
    if names is None:
        return None
    header_names, query_names = names
    if any(headers.get(h) for h in header_names):
        return "header"
    if any(_param(params, q) for q in query_names):
        return "query"
    return None


def _sent_key(provider: str, params: dict[str, list[str]], headers: Message, *, allow_query: bool) -> str | None:
    header_names, query_names = _KEY_LOCATIONS[provider]
    for name in header_names:
        value = headers.get(name)
        if value:
            return value.removeprefix("Bearer ").strip()
    if allow_query or not header_names:
        for name in query_names:
            value = _param(params, name)
            if value:
                return value
    return None


# provider -> (headers, query params) that may carry the key; header-less means query-only.
_KEY_LOCATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "coingecko": (("x-cg-demo-api-key", "x-cg-pro-api-key"), ("x_cg_demo_api_key", "x_cg_pro_api_key")),
    "alphavantage": ((), ("apikey",)),
    "coinmarketcap": (("X-CMC_PRO_API_KEY",), ("CMC_PRO_API_KEY",)),
    "newsapi": (("X-Api-Key", "Authorization"), ("apiKey",)),
}


# --------------------------------------------------------------------------------------------
# Error replies shared by faults and key checks
# --------------------------------------------------------------------------------------------

_BINANCE_1003 = (
    "Too much request weight used; current limit is %s request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_AV_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls "
    "per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API "
    "call frequency."
)
_AV_INFORMATION = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe "
    "to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate "
    "limits."
)
_AV_BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
_CG_429 = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to "
    "our API plans for higher rate limits."
)
_CMC_MESSAGES = {
    500: "An internal server error occurred.",
    503: "The service is temporarily unavailable.",
    1001: "This API Key is invalid.",
    1002: "API key missing.",
    1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    1009: "You've exceeded your API Key's daily rate limit.",
    1010: "You've exceeded your API Key's monthly credit limit.",
    1011: "You've hit an IP rate limit.",
}
_NEWS_MESSAGES = {
    "rateLimited": (
        "You have made too many requests recently. Developer accounts are limited to 100 requests over a "
        "24 hour period (50 requests available every 12 hours). Please upgrade to a paid plan if you need "
        "more requests."
    ),
    "apiKeyExhausted": "Your API key has no more requests available.",
    "apiKeyInvalid": (
        "Your API key is invalid or incorrect. Check your key, or go to https://newsapi.org to create a free API key."
    ),
    "apiKeyMissing": (
        "Your API key is missing. Append this to the URL with the apiKey param, or use the x-api-key HTTP header."
    ),
    "unexpectedError": "An unexpected error occurred.",
}
_YAHOO_UNAUTHORIZED = "Invalid Crumb. For Developers - https://bit.ly/yahoo-finance-api-feedback"
_CLOUDFLARE_HTML = """<!DOCTYPE html>
<html lang="en-US"><head><title>{host} | {status}: {reason}</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><h1><span class="cf-error-type">Error</span>
<span class="cf-error-code">{status}</span></h1>
<h2 class="cf-subheadline">{reason}</h2>
<p>Cloudflare Ray ID: <strong>{ray}</strong> &bull; Performance &amp; security by Cloudflare</p>
</div></body></html>
"""
_REASONS = {
    403: "Access denied",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    520: "Web server is returning an unknown error",
    522: "Connection timed out",
}


def _cmc_status(code: int, now: float, message: str | None = None) -> dict[str, Any]:
    return {
        "status": {
            "timestamp": _iso_ms(now),
            "error_code": code,
            "error_message": message if message is not None else _CMC_MESSAGES.get(code, "Error"),
            "elapsed": 0,
            "credit_count": 0,
        }
    }


def _news_error(status: int, code: str, message: str | None = None) -> _Reply:
    return _json(status, {"status": "error", "code": code, "message": message or _NEWS_MESSAGES[code]})


def _yahoo_finance_error(status: int, code: str, description: str) -> _Reply:
    return _json(status, {"finance": {"result": None, "error": {"code": code, "description": description}}})


def _bad_key_reply(provider: str, *, missing: bool, now: float) -> _Reply:
    if provider == "yahoo":
        return _yahoo_finance_error(401, "Unauthorized", _YAHOO_UNAUTHORIZED)
    if provider == "binance":
        return _json(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    if provider == "coingecko":
        message = "Missing API Key" if missing else "Invalid API Key"
        return _json(401, {"error": {"status": {"error_code": 10002, "error_message": message}}})
    if provider == "alphavantage":
        return _json(200, {"Error Message": _AV_BAD_KEY})
    if provider == "coinmarketcap":
        return _json(401, _cmc_status(1002 if missing else 1001, now))
    return _news_error(401, "apiKeyMissing" if missing else "apiKeyInvalid")


def _rate_limited_reply(provider: str, sub: str, now: float) -> _Reply:
    """The provider's ordinary 429 body (headers are added by the caller)."""
    if provider == "yahoo":
        return _text(429, "Too Many Requests")
    if provider == "binance":
        return _json(429, {"code": -1003, "msg": _BINANCE_1003 % 6000})
    if provider == "coingecko":
        return _json(429, {"status": {"error_code": 429, "error_message": _CG_429}})
    if provider == "alphavantage":
        return _json(429, {"Information": _AV_INFORMATION})
    if provider == "coinmarketcap":
        return _json(429, _cmc_status(1008, now))
    return _news_error(429, "rateLimited")


def _throttle_reply(provider: str, sub: str, fault: Fault, now: float) -> _Reply:
    """Each provider's most characteristic throttle signal.

    Alpha Vantage: HTTP 200 with ``Information`` (variant "note": the older ``Note``).
    Yahoo: 429 plain text, ``Edge: Too Many Requests`` on getcrumb, no Retry-After.
    Binance: the escalation, 418 IP ban with Retry-After. CoinGecko: its JSON 429, no
    retry-after. CoinMarketCap: 429 with error_code 1009 (variant picks 1008-1011).
    NewsAPI: 429 ``apiKeyExhausted``.
    """
    if provider == "alphavantage":
        key = "Note" if fault.variant == "note" else "Information"
        reply = _json(200, {key: _AV_NOTE if key == "Note" else _AV_INFORMATION})
    elif provider == "yahoo":
        reply = _text(429, "Edge: Too Many Requests" if sub.startswith("/v1/test/getcrumb") else "Too Many Requests")
    elif provider == "binance":
        until = int((now + max(fault.retry_after, 1)) * 1000)
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        reply = _json(418, {"code": -1003, "msg": msg}, [("Retry-After", str(fault.retry_after))])
    elif provider == "coinmarketcap":
        reply = _json(429, _cmc_status(int(fault.variant or 1009), now))
    elif provider == "newsapi":
        reply = _news_error(429, "apiKeyExhausted")
    else:
        reply = _rate_limited_reply(provider, sub, now)
    if fault.status is not None:
        reply.status = fault.status
    return reply


def _server_error_reply(provider: str, status: int, now: float) -> _Reply:
    if provider == "yahoo":
        return _yahoo_finance_error(status, "Internal Server Error", f"HTTP {status} from upstream")
    if provider == "binance":
        if status == 503:
            return _json(
                503,
                {
                    "code": -1008,
                    "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
                },
            )
        return _json(500, {"code": -1000, "msg": "An unknown error occurred while processing the request."})
    if provider == "coingecko":
        return _json(status, {"status": {"error_code": status, "error_message": "Internal server error"}})
    if provider == "alphavantage":
        return _text(status, "Internal Server Error" if status == 500 else "Service Unavailable")
    if provider == "coinmarketcap":
        return _json(status, _cmc_status(status, now))
    return _news_error(status, "unexpectedError")


def _fault_reply(provider: str, sub: str, fault: Fault, now: float) -> _Reply:
    kind = fault.kind
    if kind in ("status_429", "status_429_no_retry_after"):
        reply = _rate_limited_reply(provider, sub, now)
        if kind == "status_429":
            reply.headers.append(("Retry-After", str(fault.retry_after)))
        return reply
    if kind == "status_500":
        return _server_error_reply(provider, 500, now)
    if kind == "status_503":
        return _server_error_reply(provider, 503, now)
    if kind == "html_error":
        status = fault.status or 502
        page = _CLOUDFLARE_HTML.format(
            host=f"{provider}.invalid",
            status=status,
            reason=_REASONS.get(status, "Error"),
            ray=secrets.token_hex(8),
        )
        return _text(status, page, "text/html; charset=UTF-8")
    if kind == "throttle_body":
        return _throttle_reply(provider, sub, fault, now)
    if kind == "bad_key":
        return _bad_key_reply(provider, missing=False, now=now)
    raise AssertionError(f"fault {kind} has no immediate reply")


def _binance_weight(sub: str, params: dict[str, list[str]]) -> int:
    if sub == "/api/v3/ticker/24hr":
        if _param(params, "symbol"):
            return 2
        raw = _param(params, "symbols")
        if raw is None:
            return 80
        n = raw.count(",") + 1
        return 2 if n <= 20 else 40 if n <= 100 else 80
    if sub == "/api/v3/ticker/price":
        return 2 if _param(params, "symbol") else 4
    if sub == "/api/v3/exchangeInfo":
        return 20
    return 2 if sub in ("/api/v3/klines", "/api/v3/uiKlines") else 1


# --------------------------------------------------------------------------------------------
# The six APIs
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    provider: str
    path: str  # provider-relative, e.g. /api/v3/klines
    params: dict[str, list[str]]
    headers: Message
    nan: bool = False

    def get(self, name: str) -> str | None:
        return _param(self.params, name)


_YAHOO_INTERVALS = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
    "1d": _DAY,
    "5d": 5 * _DAY,
    "1wk": 7 * _DAY,
    "1mo": _MONTH,
    "3mo": 3 * _MONTH,
}
_YAHOO_RANGE_MONTHS = {"1mo": 1, "3mo": 3, "6mo": 6, "1y": 12, "2y": 24, "5y": 60, "10y": 120}
_YAHOO_RANGES = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")
_YAHOO_SYMBOL_RE = re.compile(r"^[A-Za-z0-9^.=\-]{1,20}$")
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
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    "1M": _MONTH,
}
_CG_IMAGES = "https://coin-images.coingecko.com/coins/images/"
_CG_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-.]{0,63}$")
_CMC_SYMBOL_RE = re.compile(r"^[A-Za-z0-9$]{1,20}$")
_CMC_SLUG_RE = re.compile(r"^[a-z0-9\-]{1,64}$")
_AV_SYMBOL_RE = re.compile(r"^[A-Za-z0-9.\-]{1,20}$")
_NEWS_SOURCES = (
    ("reuters", "Reuters"),
    ("bloomberg", "Bloomberg"),
    (None, "CoinDesk"),
    ("the-wall-street-journal", "The Wall Street Journal"),
    ("cnbc", "CNBC"),
    (None, "Yahoo Entertainment"),
    ("financial-times", "Financial Times"),
    (None, "Decrypt"),
    ("business-insider", "Business Insider"),
    ("associated-press", "Associated Press"),
)
_NEWS_VERBS = ("climbs", "slips", "rallies", "steadies", "tumbles", "edges higher", "drifts lower", "surges")
_NEWS_REASONS = (
    "ETF inflows resume",
    "traders eye the Fed",
    "earnings beat estimates",
    "volumes thin out",
    "regulators weigh in",
    "the dollar softens",
    "analysts raise targets",
    "risk appetite returns",
)
_NEWS_AUTHORS = ("Jane Doe", "John Smith", "Akira Tanaka", "Maria Rossi", "Lena Fischer", "Omar Haddad")
_NEWS_CATEGORIES = ("business", "entertainment", "general", "health", "science", "sports", "technology")


def _binance_split(symbol: str) -> tuple[str, str]:
    for quote in _BINANCE_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, "USDT"


def _binance_profile(symbol: str) -> _Profile:
    base, quote = _binance_split(symbol)
    if quote in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI"):
        return _profile(base)
    return _pair_profile(base, quote)


def _yahoo_kind(symbol: str) -> str:
    if symbol.startswith("^"):
        return "INDEX"
    if symbol.endswith("=X"):
        return "CURRENCY"
    if symbol.endswith("=F"):
        return "FUTURE"
    if "-" in symbol and symbol.rsplit("-", 1)[1] in _FIAT_USD:
        return "CRYPTOCURRENCY"
    return "EQUITY"


def _yahoo_asset(symbol: str) -> str:
    kind = _yahoo_kind(symbol)
    if kind == "CRYPTOCURRENCY":
        return symbol.rsplit("-", 1)[0]
    if kind == "CURRENCY":
        return symbol[:3]
    return symbol


@lru_cache(maxsize=65536)
def _yahoo_profile(symbol: str) -> _Profile:
    kind = _yahoo_kind(symbol)
    if kind == "CRYPTOCURRENCY":
        base, quote = symbol.rsplit("-", 1)
        return _profile(base) if quote == "USD" else _pair_profile(base, quote)
    if kind == "CURRENCY":
        pair = symbol[:-2]
        base, quote = (pair[:3], pair[3:]) if len(pair) == 6 else ("USD", pair[:3])
        if base in _FIAT_USD and quote in _FIAT_USD:
            return _fx_profile(base, quote)
    return _profile(symbol)


class _Apis:
    """Routing and payload builders; holds no state of its own beyond the server's config."""

    def __init__(self, server: FakeProviderServer) -> None:
        self.server = server

    def route(self, req: _Request) -> _Reply:
        handler = getattr(self, "_" + req.provider)
        return handler(req)

    # -- Yahoo -------------------------------------------------------------------------------

    def _yahoo(self, req: _Request) -> _Reply:
        path = req.path
        if path in ("/", "/fc"):
            return self._yahoo_cookie()
        if path == "/v1/test/getcrumb":
            return self._yahoo_crumb(req)
        if path == "/v7/finance/quote":
            return self._yahoo_quote(req)
        if path.startswith("/v8/finance/chart/"):
            return self._yahoo_chart(req, unquote(path[len("/v8/finance/chart/") :]))
        return _yahoo_finance_error(404, "Not Found", "HTTP 404 Not Found")

    def _yahoo_cookie(self) -> _Reply:
        value = "d=AQABBA" + secrets.token_urlsafe(24) + "&S=AQAAA" + secrets.token_urlsafe(12)
        with self.server._lock:
            self.server._yahoo_cookies.add(value)
        # Host-only, not Secure: the fake is plain http on 127.0.0.1 and the jar must send it back.
        cookie = f"A3={value}; Max-Age=31557600; Path=/; SameSite=None; HttpOnly"
        reply = _text(200, "<html><body>ok</body></html>", "text/html; charset=utf-8")
        reply.headers.append(("Set-Cookie", cookie))
        return reply

    def _yahoo_crumb_for(self, cookie: str) -> str:
        digest = hmac.new(self.server._secret, cookie.encode(), hashlib.sha256).digest()
        return "".join(ch for ch in base64.b64encode(digest).decode() if ch.isalnum())[:11]

    def _yahoo_session(self, req: _Request) -> str | None:
        cookie = _cookies(req.headers).get("A3")
        with self.server._lock:
            return cookie if cookie in self.server._yahoo_cookies else None

    def _yahoo_crumb(self, req: _Request) -> _Reply:
        # yfinance reports getcrumb answering "too many requests" to non-browser User-Agents.
        if "Mozilla/" not in (req.headers.get("User-Agent") or ""):
            return _text(429, "Too Many Requests")
        cookie = self._yahoo_session(req)
        if cookie is None:
            return _yahoo_finance_error(401, "Unauthorized", "Invalid Cookie")
        return _text(200, self._yahoo_crumb_for(cookie))

    def _yahoo_quote(self, req: _Request) -> _Reply:
        if self.server.yahoo_require_crumb:
            cookie = self._yahoo_session(req)
            if cookie is None:
                return _yahoo_finance_error(401, "Unauthorized", "Invalid Cookie")
            crumb = req.get("crumb")
            if not crumb or not hmac.compare_digest(crumb, self._yahoo_crumb_for(cookie)):
                return _yahoo_finance_error(401, "Unauthorized", _YAHOO_UNAUTHORIZED)
        symbols = [s.upper() for s in _comma_list(req.get("symbols"))]
        if not symbols:
            return _yahoo_finance_error(400, "Bad Request", "Missing required query parameter=symbols")
        now = self.server.now()
        rows = [
            self._yahoo_quote_row(s, now, req.nan)
            for s in dict.fromkeys(symbols)
            if _YAHOO_SYMBOL_RE.match(s) and not self.server.is_unknown(s, _yahoo_asset(s))
        ]
        return _json(200, {"quoteResponse": {"result": rows, "error": None}})

    @staticmethod
    def _yahoo_exchange(symbol: str, now: float) -> dict[str, Any]:
        kind = _yahoo_kind(symbol)
        if kind == "CRYPTOCURRENCY":
            exchange, full, tz = "CCC", "CCC", UTC
        elif kind == "CURRENCY":
            exchange, full, tz = "CCY", "CCY", _LONDON
        elif kind == "INDEX":
            exchange, full, tz = "SNP", "SNP", _NY
        else:
            exchange, full, tz = "NMS", "NasdaqGS", _NY
        local = datetime.fromtimestamp(now, tz)
        offset = int(local.utcoffset().total_seconds()) if local.utcoffset() is not None else 0
        currency = symbol.rsplit("-", 1)[1] if kind == "CRYPTOCURRENCY" else "USD"
        if kind == "CURRENCY" and len(symbol) == 8:
            currency = symbol[3:6]
        return {
            "kind": kind,
            "exchange": exchange,
            "full": full,
            "tz_name": "UTC" if tz is UTC else str(tz),
            "tz_short": local.tzname() or "UTC",
            "gmtoffset": offset,
            "currency": currency,
            "continuous": kind in ("CRYPTOCURRENCY", "CURRENCY"),
        }

    def _yahoo_quote_row(self, symbol: str, now: float, nan: bool) -> dict[str, Any]:
        p = _yahoo_profile(symbol)
        ex = self._yahoo_exchange(symbol, now)
        digits = _price_digits(p.price)
        asset = _yahoo_asset(symbol)
        name = _NAMES.get(symbol) or (
            f"{_COINS[asset][1]} {ex['currency']}" if asset in _COINS else f"{symbol.title()} Holdings"
        )
        if ex["continuous"]:
            market_time, state = int(now), "REGULAR"
        else:
            day = _latest_session_day(now)
            close = _ny_ts(day, dtime(16, 0))
            market_time = int(min(now, close))
            state = "REGULAR" if now < close else "POST" if now < _ny_ts(day, dtime(20, 0)) else "CLOSED"
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
            "regularMarketPrice": _num(p.price, nan, digits),
            "regularMarketChange": _num(p.change, nan, digits + 2),
            "regularMarketChangePercent": _num(p.change_pct, nan, 4),
            "regularMarketTime": market_time,
            "regularMarketOpen": _num(p.open, nan, digits),
            "regularMarketDayHigh": _num(p.high, nan, digits),
            "regularMarketDayLow": _num(p.low, nan, digits),
            "regularMarketVolume": int(p.volume),
            "regularMarketPreviousClose": _num(p.prev_close, nan, digits),
            "bid": _num(p.price - tick, nan, digits),
            "ask": _num(p.price + tick, nan, digits),
            "bidSize": 1 + p.seed % 40,
            "askSize": 1 + p.seed % 37,
            "fiftyTwoWeekHigh": _num(p.price * 1.31, nan, digits),
            "fiftyTwoWeekLow": _num(p.price * 0.72, nan, digits),
            "exchangeDataDelayedBy": 0,
            "tradeable": False,
        }

    def _yahoo_chart(self, req: _Request, raw_symbol: str) -> _Reply:
        symbol = raw_symbol.upper()

        def chart_error(status: int, code: str, description: str) -> _Reply:
            return _json(status, {"chart": {"result": None, "error": {"code": code, "description": description}}})

        if not _YAHOO_SYMBOL_RE.match(symbol) or self.server.is_unknown(symbol, _yahoo_asset(symbol)):
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
        p = _yahoo_profile(symbol)
        ex = self._yahoo_exchange(symbol, now)
        first_trade = 1410912000 if ex["kind"] == "CRYPTOCURRENCY" else 315532800 + p.seed % (30 * 365 * _DAY)
        prepost = _truthy(req.get("includePrePost"))
        range_ = req.get("range")
        try:
            period1 = _int_param(req.params, "period1")
            period2 = _int_param(req.params, "period2")
        except _BadParam as exc:
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
        if 0 < step < _DAY:
            if step == 60 and (end - start > 8 * _DAY or start < now - 30 * _DAY):
                return chart_error(
                    422,
                    "Unprocessable Entity",
                    f"1m data not available for startTime={int(start)} and endTime={int(end)}. "
                    "Only 8 days worth of 1m granularity data are allowed to be fetched per "
                    "request.",
                )
            if start < now - 60 * _DAY:
                return chart_error(
                    422,
                    "Unprocessable Entity",
                    f"{interval} data not available for startTime={int(start)} and "
                    f"endTime={int(end)}. The requested range must be within the last 60 days.",
                )
        bars = self._yahoo_bar_times(step, start, end, ex["continuous"], prepost)
        digits = _price_digits(p.price)
        opens, highs, lows, closes, volumes = [], [], [], [], []
        for t, length in bars:
            o, h, lo, c, v = p.bar(t, length)
            opens.append(_num(o, req.nan, digits))
            highs.append(_num(h, req.nan, digits))
            lows.append(_num(lo, req.nan, digits))
            closes.append(_num(c, req.nan, digits))
            volumes.append(int(v))
        indicators: dict[str, Any] = {
            "quote": [{"open": opens, "high": highs, "low": lows, "close": closes, "volume": volumes}]
        }
        if step >= _DAY or step < 0:
            indicators["adjclose"] = [{"adjclose": list(closes)}]
        meta = {
            "currency": ex["currency"],
            "symbol": symbol,
            "exchangeName": ex["exchange"],
            "fullExchangeName": ex["full"],
            "instrumentType": ex["kind"],
            "firstTradeDate": first_trade,
            "regularMarketTime": int(now)
            if ex["continuous"]
            else int(min(now, _ny_ts(_latest_session_day(now), dtime(16, 0)))),
            "hasPrePostMarketData": not ex["continuous"],
            "gmtoffset": ex["gmtoffset"],
            "timezone": ex["tz_short"],
            "exchangeTimezoneName": ex["tz_name"],
            "regularMarketPrice": _num(p.price, req.nan, digits),
            "regularMarketDayHigh": _num(p.high, req.nan, digits),
            "regularMarketDayLow": _num(p.low, req.nan, digits),
            "regularMarketVolume": int(p.volume),
            "chartPreviousClose": _num(p.prev_close, req.nan, digits),
            "previousClose": _num(p.prev_close, req.nan, digits),
            "scale": 3,
            "priceHint": digits,
            "dataGranularity": interval,
            "range": range_,
            "validRanges": list(_YAHOO_RANGES),
        }
        result = {"meta": meta, "timestamp": [t for t, _ in bars], "indicators": indicators}
        return _json(200, {"chart": {"result": [result], "error": None}})

    @staticmethod
    def _yahoo_range_start(range_: str, now: float, continuous: bool, prepost: bool, first_trade: int) -> float:
        if range_ in ("1d", "5d"):
            days = 1 if range_ == "1d" else 5
            if continuous:
                return now - days * _DAY
            day = _latest_session_day(now)
            for _ in range(days - 1):
                day -= timedelta(days=1)
                while day.weekday() >= 5:
                    day -= timedelta(days=1)
            return _ny_ts(day, dtime(4, 0) if prepost else dtime(9, 30))
        if range_ == "ytd":
            return datetime(datetime.fromtimestamp(now, UTC).year, 1, 1, tzinfo=UTC).timestamp()
        if range_ == "max":
            return float(first_trade)
        return _months_back(datetime.fromtimestamp(now, UTC), _YAHOO_RANGE_MONTHS[range_]).timestamp()

    @staticmethod
    def _yahoo_bar_times(step: int, start: float, end: float, continuous: bool, prepost: bool) -> list[tuple[int, int]]:
        """(open time, length) of each bar; equities follow the NY session (no holidays)."""
        if step < 0:
            tz = UTC if continuous else _NY
            times = _month_starts(start, end, -step, tz)
            return [(int(t), 30 * _DAY * -step) for t in times]
        if continuous:
            offset = 4 * _DAY if step == 7 * _DAY else 0  # weeks start on Monday
            return [(t, step) for t in _aligned_times(step, start, end, offset=offset)]
        out: list[tuple[int, int]] = []
        day = datetime.fromtimestamp(start, _NY).date()
        last = datetime.fromtimestamp(end, _NY).date()
        session_open, session_close = (dtime(4, 0), dtime(20, 0)) if prepost else (dtime(9, 30), dtime(16, 0))
        trading_days = 0
        while day <= last and len(out) < _MAX_BARS:
            if day.weekday() < 5:
                opens = _ny_ts(day, session_open)
                closes = _ny_ts(day, session_close)
                if step < _DAY:
                    t = opens
                    while t < closes:
                        if start <= t < end:
                            out.append((int(t), step))
                        t += step
                else:
                    stamp = _ny_ts(day, dtime(9, 30))
                    wanted = (
                        step == _DAY
                        or (step == 5 * _DAY and trading_days % 5 == 0)
                        or (step == 7 * _DAY and day.weekday() == 0)
                    )
                    if wanted and start <= stamp < end:
                        out.append((int(stamp), 23400 if step == _DAY else step))
                    trading_days += 1
            day += timedelta(days=1)
        return out

    # -- Binance -----------------------------------------------------------------------------

    def _binance(self, req: _Request) -> _Reply:
        path = req.path
        if path == "/api/v3/ping":
            return _json(200, {})
        if path == "/api/v3/time":
            return _json(200, {"serverTime": int(self.server.now() * 1000)})
        try:
            if path in ("/api/v3/ticker/price", "/api/v3/ticker/24hr", "/api/v3/exchangeInfo"):
                symbols, single = self._binance_symbols(req)
                if isinstance(symbols, _Reply):
                    return symbols
                if path == "/api/v3/exchangeInfo":
                    return self._binance_exchange_info(symbols)
                mini = (req.get("type") or "FULL").upper()
                if mini not in ("FULL", "MINI"):
                    return _json(400, {"code": -1104, "msg": "Invalid value for parameter 'type'."})
                rows = [self._binance_ticker(path, s, req.nan, mini == "MINI") for s in symbols]
                return _json(200, rows[0] if single else rows)
            if path in ("/api/v3/klines", "/api/v3/uiKlines"):
                return self._binance_klines(req)
        except _BadParam as exc:
            return _json(400, {"code": -1100, "msg": f"Illegal characters found in parameter '{exc}'."})
        return _json(404, {"code": -1000, "msg": f"Unknown path {path}."})

    def _binance_symbols(self, req: _Request) -> tuple[list[str], bool] | tuple[_Reply, bool]:
        symbol, raw = req.get("symbol"), req.get("symbols")
        if symbol is not None and raw is not None:
            return _json(400, {"code": -1128, "msg": "Combination of optional parameters invalid."}), False
        if symbol is not None:
            if not _BINANCE_SYMBOL_RE.match(symbol):
                msg = "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
                return _json(400, {"code": -1100, "msg": msg}), False
            if self.server.is_unknown(symbol, _binance_split(symbol)[0]):
                return _json(400, {"code": -1121, "msg": "Invalid symbol."}), False
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
            return _json(400, {"code": -1100, "msg": msg}), False
        symbols = list(dict.fromkeys(symbols))
        if any(self.server.is_unknown(s, _binance_split(s)[0]) for s in symbols):
            return _json(400, {"code": -1121, "msg": "Invalid symbol."}), False
        return symbols, False

    def _binance_ticker(self, path: str, symbol: str, nan: bool, mini: bool) -> dict[str, Any]:
        p = _binance_profile(symbol)
        if path == "/api/v3/ticker/price":
            return {"symbol": symbol, "price": _str(p.price, nan)}
        close_ms = int(self.server.now() * 1000)
        trades = 100_000 + p.seed % 3_000_000
        first_id = 1_000_000_000 + p.seed % 3_000_000_000
        avg = (p.high + p.low + p.price) / 3
        row: dict[str, Any] = {"symbol": symbol}
        if not mini:
            row |= {
                "priceChange": _str(p.change, nan),
                "priceChangePercent": _str(p.change_pct, nan, 3),
                "weightedAvgPrice": _str(avg, nan),
                "prevClosePrice": _str(p.prev_close, nan),
            }
        row |= {"lastPrice": _str(p.price, nan)}
        if not mini:
            tick = p.price * 0.00001
            row |= {
                "lastQty": _str(0.0012 + (p.seed % 1000) / 1e5, False),
                "bidPrice": _str(p.price - tick, nan),
                "bidQty": _str(2.41 + (p.seed % 97) / 10, False),
                "askPrice": _str(p.price + tick, nan),
                "askQty": _str(0.518 + (p.seed % 89) / 10, False),
            }
        row |= {
            "openPrice": _str(p.open, nan),
            "highPrice": _str(p.high, nan),
            "lowPrice": _str(p.low, nan),
            "volume": _str(p.volume, False),
            "quoteVolume": _str(p.volume * avg, False),
            "openTime": close_ms - _DAY * 1000,
            "closeTime": close_ms,
            "firstId": first_id,
            "lastId": first_id + trades - 1,
            "count": trades,
        }
        return row

    def _binance_exchange_info(self, symbols: list[str]) -> _Reply:
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
        return _json(
            200,
            {
                "timezone": "UTC",
                "serverTime": int(self.server.now() * 1000),
                "rateLimits": limits,
                "exchangeFilters": [],
                "symbols": rows,
            },
        )

    def _binance_klines(self, req: _Request) -> _Reply:
        symbol = req.get("symbol")
        if not symbol:
            return _json(
                400,
                {
                    "code": -1102,
                    "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                },
            )
        if not _BINANCE_SYMBOL_RE.match(symbol):
            return _json(
                400,
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
                },
            )
        interval = req.get("interval")
        if not interval:
            return _json(
                400,
                {
                    "code": -1102,
                    "msg": "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
                },
            )
        step = _BINANCE_INTERVALS.get(interval)
        if step is None:
            return _json(400, {"code": -1120, "msg": "Invalid interval."})
        if self.server.is_unknown(symbol, _binance_split(symbol)[0]):
            return _json(400, {"code": -1121, "msg": "Invalid symbol."})
        limit = _int_param(req.params, "limit", 500) or 500
        if not 1 <= limit <= 1000:
            return _json(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
        start_ms = _int_param(req.params, "startTime")
        end_ms = _int_param(req.params, "endTime")
        offset = self._binance_tz_offset(req.get("timeZone"))
        if offset is None:
            return _json(400, {"code": -1130, "msg": "Invalid data sent for a parameter."})
        now = self.server.now()
        end = min(now, end_ms / 1000) if end_ms is not None else now
        opens = self._binance_open_times(step, start_ms, end, limit, offset)
        p = _binance_profile(symbol)
        rows = []
        for t in opens:
            length = (_add_months(datetime.fromtimestamp(t, UTC), -step).timestamp() - t) if step < 0 else step
            o, h, lo, c, v = p.bar(t, length)
            mid = (o + c) / 2
            taker = 0.35 + 0.3 * _unit(p.seed ^ 0x77, int(t))
            rows.append(
                [
                    int(t * 1000),
                    _str(o, req.nan),
                    _str(h, req.nan),
                    _str(lo, req.nan),
                    _str(c, req.nan),
                    _str(v, False),
                    int((t + length) * 1000) - 1,
                    _str(v * mid, False),
                    int(50 + v * 10 % 100_000),
                    _str(v * taker, False),
                    _str(v * taker * mid, False),
                    "0",
                ]
            )
        return _json(200, rows)

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
                times = _month_starts(start_ms / 1000, end + 1, -step)
                return times[:limit]
            first = _add_months(datetime.fromtimestamp(end, UTC), -limit).timestamp()
            return _month_starts(first, end + 1, -step)[-limit:]
        if step == 7 * _DAY:
            offset += 4 * _DAY  # Binance weeks open on Monday 00:00
        if start_ms is not None:
            return [float(t) for t in _aligned_times(step, start_ms / 1000, end + 1e-3, offset=offset, limit=limit)]
        last = math.floor((end - offset) / step) * step + offset
        return [float(last - (limit - 1 - i) * step) for i in range(limit)]

    # -- CoinGecko ---------------------------------------------------------------------------

    def _coingecko(self, req: _Request) -> _Reply:
        path = req.path.removeprefix("/api/v3")
        if path == "/ping":
            return _json(200, {"gecko_says": "(V3) To the Moon!"})
        if path == "/simple/price":
            return self._cg_simple_price(req)
        if path == "/coins/markets":
            return self._cg_markets(req)
        if path == "/coins/list":
            rows = [{"id": row[0], "symbol": sym.lower(), "name": row[1]} for sym, row in _COINS.items()]
            return _json(200, rows)
        match = re.fullmatch(r"/coins/([^/]+)/market_chart(/range)?", path)
        if match:
            return self._cg_market_chart(req, unquote(match.group(1)), ranged=bool(match.group(2)))
        return _json(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/documentation"})

    def _cg_asset(self, coin_id: str) -> str | None:
        """The asset behind a CoinGecko id, or None if it is unknown."""
        if not _CG_ID_RE.match(coin_id):
            return None
        asset = _CG_TO_SYMBOL.get(coin_id, coin_id.upper())
        return None if self.server.is_unknown(coin_id, asset) else asset

    @staticmethod
    def _cg_rate(vs: str) -> float | None:
        code = vs.upper()
        if code in _FIAT_USD:
            return 1.0 / _FIAT_USD[code]
        if vs in ("btc", "eth", "usdt"):
            return 1.0 / _profile(code).price
        return None

    @staticmethod
    def _cg_round(value: float, nan: bool, precision: str | None) -> float:
        if nan:
            return math.nan
        if precision and precision.isdigit():
            return round(value, int(precision))
        return round(value, 2) if value >= 1 else float(f"{value:.8g}")

    def _cg_simple_price(self, req: _Request) -> _Reply:
        vs_list = [v.lower() for v in _comma_list(req.get("vs_currencies"))]
        if not vs_list:
            return _json(400, {"error": "Missing parameter vs_currencies"})
        ids = [i.lower() for i in _comma_list(req.get("ids"))]
        if not ids:
            return _json(400, {"error": "Missing parameter ids"})
        with_mcap = _truthy(req.get("include_market_cap"))
        with_vol = _truthy(req.get("include_24hr_vol"))
        with_change = _truthy(req.get("include_24hr_change"))
        with_updated = _truthy(req.get("include_last_updated_at"))
        precision = req.get("precision")
        now = int(self.server.now())
        rates = [(vs, rate) for vs in vs_list if (rate := self._cg_rate(vs)) is not None]
        out: dict[str, Any] = {}
        for coin_id in ids:
            asset = self._cg_asset(coin_id)
            if asset is None:
                continue
            p = _profile(asset)
            row: dict[str, Any] = {}
            for vs, rate in rates:
                row[vs] = self._cg_round(p.price * rate, req.nan, precision)
                if with_mcap:
                    row[f"{vs}_market_cap"] = round(p.price * rate * p.supply, 2)
                if with_vol:
                    row[f"{vs}_24h_vol"] = round(p.price * rate * p.volume, 2)
                if with_change:
                    row[f"{vs}_24h_change"] = _num(p.change_pct, req.nan, 4)
            if with_updated:
                row["last_updated_at"] = now - p.seed % 30
            out[coin_id] = row
        return _json(200, out)

    def _cg_markets(self, req: _Request) -> _Reply:
        vs = (req.get("vs_currency") or "").lower()
        if not vs:
            return _json(400, {"error": "Missing parameter vs_currency"})
        rate = self._cg_rate(vs)
        if rate is None:
            return _json(400, {"error": "invalid vs_currency"})
        try:
            per_page = _int_param(req.params, "per_page", 100) or 100
            page = _int_param(req.params, "page", 1) or 1
        except _BadParam as exc:
            return _json(400, {"error": f"invalid {exc}"})
        per_page = max(1, min(per_page, 250))
        ids = [i.lower() for i in _comma_list(req.get("ids"))] or [row[0] for row in _COINS.values()]
        windows = [
            w
            for w in _comma_list(req.get("price_change_percentage"))
            if w in ("1h", "24h", "7d", "14d", "30d", "200d", "1y")
        ]
        now = self.server.now()
        coins = []
        for coin_id in ids:
            asset = self._cg_asset(coin_id)
            if asset is not None:
                coins.append((coin_id, asset, _profile(asset)))
        coins.sort(key=lambda c: c[2].price * c[2].supply, reverse=True)
        rows = []
        for coin_id, asset, p in coins[(page - 1) * per_page : page * per_page]:
            price = p.price * rate
            mcap = price * p.supply
            rank = _COINS[asset][4] if asset in _COINS else 100 + p.seed % 9000
            row: dict[str, Any] = {
                "id": coin_id,
                "symbol": asset.lower() if asset in _COINS else coin_id.split("-")[0][:6],
                "name": _COINS[asset][1] if asset in _COINS else coin_id.replace("-", " ").title(),
                "image": _CG_IMAGES + f"{p.seed % 40000}/large/{coin_id}.png",
                "current_price": self._cg_round(price, req.nan, req.get("precision")),
                "market_cap": round(mcap),
                "market_cap_rank": rank,
                "fully_diluted_valuation": round(mcap * 1.05),
                "total_volume": round(price * p.volume),
                "high_24h": _num(p.high * rate, req.nan, 8),
                "low_24h": _num(p.low * rate, req.nan, 8),
                "price_change_24h": _num(p.change * rate, req.nan, 8),
                "price_change_percentage_24h": _num(p.change_pct, req.nan, 5),
                "market_cap_change_24h": round(p.change * rate * p.supply, 2),
                "market_cap_change_percentage_24h": round(p.change_pct, 5),
                "circulating_supply": round(p.supply, 1),
                "total_supply": round(p.supply * 1.05, 1),
                "max_supply": None,
                "ath": _num(price * 1.4, req.nan, 8),
                "ath_change_percentage": round(-100 / 3.5, 5),
                "ath_date": "2024-12-17T15:02:41.429Z",
                "atl": _num(price * 0.01, req.nan, 8),
                "atl_change_percentage": 9900.0,
                "atl_date": "2013-07-06T00:00:00.000Z",
                "roi": None,
                "last_updated": _iso_ms(now - p.seed % 30),
            }
            for window in windows:
                days = {"1h": 1 / 24, "24h": 1, "7d": 7, "14d": 14, "30d": 30, "200d": 200, "1y": 365}[window]
                then = p.price_at(now - days * _DAY)
                row[f"price_change_percentage_{window}_in_currency"] = _num((p.price / then - 1) * 100, req.nan, 5)
            if _truthy(req.get("sparkline")):
                start = int(now // 3600 * 3600) - 167 * 3600
                row["sparkline_in_7d"] = {
                    "price": [_num(p.price_at(start + h * 3600) * rate, req.nan, 8) for h in range(168)]
                }
            rows.append(row)
        return _json(200, rows)

    def _cg_market_chart(self, req: _Request, coin_id: str, *, ranged: bool) -> _Reply:
        vs = (req.get("vs_currency") or "").lower()
        if not vs:
            return _json(400, {"error": "Missing parameter vs_currency"})
        rate = self._cg_rate(vs)
        if rate is None:
            return _json(400, {"error": "invalid vs_currency"})
        asset = self._cg_asset(coin_id.lower())
        if asset is None:
            return _json(404, {"error": "coin not found"})
        now = self.server.now()
        p = _profile(asset)
        genesis = 1367107200.0  # 2013-04-28, CoinGecko's first data point
        if ranged:
            try:
                start = float(req.get("from") or "")
                end = min(float(req.get("to") or ""), now)
            except ValueError:
                return _json(400, {"error": "Invalid from/to: epoch seconds required"})
            span = end - start
        else:
            days = (req.get("days") or "").lower()
            if days == "max":
                start, end = genesis, now
            else:
                try:
                    n = float(days)
                except ValueError:
                    return _json(400, {"error": "invalid days"})
                start, end = now - n * _DAY, now
            span = end - start
        if req.get("interval") == "daily" or span > 90 * _DAY:
            step = _DAY
        elif span > _DAY:
            step = 3600
        else:
            step = 300
        times = [float(t) for t in _aligned_times(step, max(start, genesis), end)]
        if not ranged and end > (times[-1] if times else 0):
            times.append(end)  # the last point is "now", not a bucket boundary
        prices, caps, vols = [], [], []
        for t in times:
            ms = int(t * 1000)
            price = p.price_at(t) * rate
            prices.append([ms, self._cg_round(price, req.nan, req.get("precision"))])
            caps.append([ms, round(price * p.supply, 1)])
            vols.append([ms, round(price * p.volume * (0.5 + _unit(p.seed ^ 0x99, int(t))), 1)])
        return _json(200, {"prices": prices, "market_caps": caps, "total_volumes": vols})

    # -- Alpha Vantage -----------------------------------------------------------------------

    def _alphavantage(self, req: _Request) -> _Reply:
        if req.path not in ("/query", "/query/"):
            return _text(404, "Not Found")
        function = (req.get("function") or "").upper()
        if function == "GLOBAL_QUOTE":
            return self._av_global_quote(req)
        if function == "TIME_SERIES_DAILY":
            return self._av_daily(req)
        if function == "REALTIME_BULK_QUOTES":
            return self._av_bulk(req)
        if not function:
            return _json(
                200,
                {
                    "Error Message": "Invalid API call. Please retry or visit the documentation "
                    "(https://www.alphavantage.co/documentation/)."
                },
            )
        return _json(200, {"Error Message": f"This API function ({function}) does not exist."})

    def _av_invalid_call(self, function: str) -> _Reply:
        return _json(
            200,
            {
                "Error Message": "Invalid API call. Please retry or visit the documentation "
                f"(https://www.alphavantage.co/documentation/) for {function}."
            },
        )

    def _av_known(self, symbol: str | None) -> bool:
        return bool(symbol) and bool(_AV_SYMBOL_RE.match(symbol or "")) and not self.server.is_unknown(symbol or "")

    def _av_global_quote(self, req: _Request) -> _Reply:
        symbol = (req.get("symbol") or "").upper()
        if not symbol:
            return self._av_invalid_call("GLOBAL_QUOTE")
        if not self._av_known(symbol):
            return _json(200, {"Global Quote": {}})
        p = _profile(symbol)
        nan = req.nan
        day = _latest_session_day(self.server.now())
        return _json(
            200,
            {
                "Global Quote": {
                    "01. symbol": symbol,
                    "02. open": _str(p.open, nan, 4),
                    "03. high": _str(p.high, nan, 4),
                    "04. low": _str(p.low, nan, 4),
                    "05. price": _str(p.price, nan, 4),
                    "06. volume": str(int(p.volume)),
                    "07. latest trading day": day.isoformat(),
                    "08. previous close": _str(p.prev_close, nan, 4),
                    "09. change": _str(p.change, nan, 4),
                    "10. change percent": ("NaN" if nan else f"{p.change_pct:.4f}") + "%",
                }
            },
        )

    def _av_daily(self, req: _Request) -> _Reply:
        symbol = (req.get("symbol") or "").upper()
        if not self._av_known(symbol):
            return self._av_invalid_call("TIME_SERIES_DAILY")
        size = (req.get("outputsize") or "compact").lower()
        count = 100 if size != "full" else 5200
        p = _profile(symbol)
        day = _latest_session_day(self.server.now())
        series: dict[str, dict[str, str]] = {}
        while len(series) < count:
            if day.weekday() < 5:
                o, h, lo, c, v = p.bar(_ny_ts(day, dtime(9, 30)), 23400)
                series[day.isoformat()] = {
                    "1. open": _str(o, req.nan, 4),
                    "2. high": _str(h, req.nan, 4),
                    "3. low": _str(lo, req.nan, 4),
                    "4. close": _str(c, req.nan, 4),
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
        return _json(200, {"Meta Data": meta, "Time Series (Daily)": series})

    def _av_bulk(self, req: _Request) -> _Reply:
        if not self.server.alphavantage_premium:
            return _json(
                200,
                {
                    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. "
                    "You may subscribe to any of the premium plans at "
                    "https://www.alphavantage.co/premium/ to instantly unlock all "
                    "premium endpoints"
                },
            )
        symbols = [s.upper() for s in _comma_list(req.get("symbol"))]
        if not symbols or len(symbols) > 100:
            return self._av_invalid_call("REALTIME_BULK_QUOTES")
        now = self.server.now()
        stamp = datetime.fromtimestamp(min(now, _ny_ts(_latest_session_day(now), dtime(16, 0))), _NY)
        rows = []
        for symbol in symbols:
            if not self._av_known(symbol):
                continue
            p = _profile(symbol)
            ext = p.price * (1 + (_unit(p.seed, 77) - 0.5) * 0.002)
            rows.append(
                {
                    "symbol": symbol,
                    "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S.000"),
                    "open": _str(p.open, req.nan, 2),
                    "high": _str(p.high, req.nan, 2),
                    "low": _str(p.low, req.nan, 2),
                    "close": _str(p.price, req.nan, 2),
                    "volume": str(int(p.volume)),
                    "previous_close": _str(p.prev_close, req.nan, 2),
                    "change": _str(p.change, req.nan, 2),
                    "change_percent": _str(p.change_pct, req.nan, 4),
                    "extended_hours_quote": _str(ext, req.nan, 2),
                    "extended_hours_change": _str(ext - p.price, req.nan, 2),
                    "extended_hours_change_percent": _str((ext / p.price - 1) * 100, req.nan, 4),
                }
            )
        return _json(200, {"endpoint": "Realtime Bulk Quotes", "message": "", "data": rows})

    # -- CoinMarketCap -----------------------------------------------------------------------

    def _coinmarketcap(self, req: _Request) -> _Reply:
        now = self.server.now()
        if req.path in ("/v1/cryptocurrency/quotes/latest", "/v2/cryptocurrency/quotes/latest"):
            return self._cmc_quotes(req, now, v2=req.path.startswith("/v2"))
        if req.path == "/v1/cryptocurrency/map":
            wanted = {s.upper() for s in _comma_list(req.get("symbol"))}
            rows = [
                {
                    "id": row[2],
                    "rank": row[4],
                    "name": row[1],
                    "symbol": sym,
                    "slug": row[3],
                    "is_active": 1,
                    "first_historical_data": "2013-04-28T18:47:21.000Z",
                    "last_historical_data": _iso_ms(now),
                    "platform": None,
                }
                for sym, row in _COINS.items()
                if not wanted or sym in wanted
            ]
            return _json(200, {"status": _cmc_ok(now, 1), "data": rows})
        return _json(404, _cmc_status(404, now, "Not found"))

    def _cmc_quotes(self, req: _Request, now: float, *, v2: bool) -> _Reply:
        given = [name for name in ("id", "slug", "symbol") if req.get(name)]
        if len(given) != 1:
            msg = (
                '"value" must contain at least one of [id, symbol, slug]'
                if not given
                else ('"value" contains a conflict between exclusive peers [id, symbol, slug]')
            )
            return _json(400, _cmc_status(400, now, msg))
        kind = given[0]
        raw = _comma_list(req.get(kind))
        converts = [c.upper() for c in _comma_list(req.get("convert"))] or ["USD"]
        for cur in converts:
            if cur not in _FIAT_USD and cur not in ("BTC", "ETH", "USDT"):
                return _json(400, _cmc_status(400, now, f'Invalid value for "convert": "{cur}"'))
        found: list[tuple[str, str, int, str]] = []  # (data key, asset, cmc id, slug)
        invalid: list[str] = []
        for ident in raw:
            resolved = self._cmc_resolve(kind, ident)
            if resolved is None:
                invalid.append(ident)
            else:
                found.append(resolved)
        if invalid and not _truthy(req.get("skip_invalid")):
            return _json(400, _cmc_status(400, now, f'Invalid value for "{kind}": "{",".join(invalid)}"'))
        data: dict[str, Any] = {}
        for key, asset, cmc_id, slug in found:
            row = self._cmc_row(asset, cmc_id, slug, converts, now, req.nan)
            data[key] = [row] if v2 and kind == "symbol" else row
        credits = max(1, math.ceil(len(found) / 100)) + len(converts) - 1
        return _json(200, {"status": _cmc_ok(now, credits), "data": data})

    def _cmc_resolve(self, kind: str, ident: str) -> tuple[str, str, int, str] | None:
        if kind == "symbol":
            if not _CMC_SYMBOL_RE.match(ident):
                return None
            asset = ident.upper()
            if self.server.is_unknown(asset):
                return None
            cmc_id = _COINS[asset][2] if asset in _COINS else 10_000 + _hash64(asset) % 80_000_000
            slug = _COINS[asset][3] if asset in _COINS else asset.lower()
            return asset, asset, cmc_id, slug
        if kind == "id":
            if not ident.isdigit() or int(ident) >= CMC_UNKNOWN_ID_FLOOR or self.server.is_unknown(ident):
                return None
            cmc_id = int(ident)
            asset = _CMC_ID_TO_SYMBOL.get(cmc_id, f"CMC{cmc_id}")
            slug = _COINS[asset][3] if asset in _COINS else asset.lower()
            return str(cmc_id), asset, cmc_id, slug
        slug = ident.lower()
        if not _CMC_SLUG_RE.match(slug):
            return None
        asset = _CMC_SLUG_TO_SYMBOL.get(slug, slug.upper().replace("-", ""))
        if self.server.is_unknown(slug, asset):
            return None
        cmc_id = _COINS[asset][2] if asset in _COINS else 10_000 + _hash64(asset) % 80_000_000
        # docs/providers.md: v1 keys `data` by the requested identifier.
        return slug, asset, cmc_id, slug

    @staticmethod
    def _cmc_row(asset: str, cmc_id: int, slug: str, converts: list[str], now: float, nan: bool) -> dict[str, Any]:
        p = _profile(asset)
        updated = _iso_ms(now // 60 * 60)
        quote = {}
        for cur in converts:
            rate = 1.0 / _usd_value(cur)
            price = p.price * rate
            quote[cur] = {
                "price": math.nan if nan else price,
                "volume_24h": p.volume * price,
                "volume_change_24h": round((_unit(p.seed, 31) - 0.5) * 40, 4),
                "percent_change_1h": round((p.price / p.price_at(now - 3600) - 1) * 100, 8),
                "percent_change_24h": round(p.change_pct, 8),
                "percent_change_7d": round((p.price / p.price_at(now - 7 * _DAY) - 1) * 100, 8),
                "percent_change_30d": round((p.price / p.price_at(now - 30 * _DAY) - 1) * 100, 8),
                "market_cap": price * p.supply,
                "market_cap_dominance": round(min(60.0, price * p.supply / 3.4e10 / rate), 4),
                "fully_diluted_market_cap": price * p.supply * 1.05,
                "tvl": None,
                "last_updated": updated,
            }
        return {
            "id": cmc_id,
            "name": _COINS[asset][1] if asset in _COINS else asset.title(),
            "symbol": asset,
            "slug": slug,
            "num_market_pairs": 50 + p.seed % 10_000,
            "date_added": "2013-04-28T00:00:00.000Z",
            "tags": [],
            "max_supply": None,
            "circulating_supply": round(p.supply),
            "total_supply": round(p.supply * 1.05),
            "is_active": 1,
            "infinite_supply": False,
            "platform": None,
            "cmc_rank": _COINS[asset][4] if asset in _COINS else 100 + p.seed % 9000,
            "is_fiat": 0,
            "self_reported_circulating_supply": None,
            "self_reported_market_cap": None,
            "tvl_ratio": None,
            "last_updated": updated,
            "quote": quote,
        }

    # -- NewsAPI -----------------------------------------------------------------------------

    def _newsapi(self, req: _Request) -> _Reply:
        path = req.path.removeprefix("/v2")
        if path not in ("/everything", "/top-headlines"):
            return _news_error(404, "routeNotFound", f"Route {req.path} not found.")
        q = req.get("q") or req.get("qInTitle") or ""
        sources = req.get("sources")
        if path == "/everything":
            if not (q or sources or req.get("domains")):
                return _news_error(
                    400,
                    "parametersMissing",
                    "Required parameters are missing, the scope of your "
                    "search is too broad. Please set any of the following required parameters and "
                    "try again: q, qInTitle, sources, domains.",
                )
            default_size = 100
        else:
            if sources and (req.get("country") or req.get("category")):
                return _news_error(
                    400,
                    "parameterInvalid",
                    "You can't mix the sources parameter with the country or category parameters.",
                )
            category = req.get("category")
            if category and category not in _NEWS_CATEGORIES:
                return _news_error(400, "parameterInvalid", f"The category param is invalid: {category}.")
            if not (q or sources or req.get("country") or category):
                return _news_error(
                    400,
                    "parametersMissing",
                    "Required parameters are missing. Please set any of "
                    "the following parameters and try again: sources, q, language, country, "
                    "category.",
                )
            default_size = 20
        if sources and len(_comma_list(sources)) > 20:
            return _news_error(
                400,
                "sourcesTooMany",
                "You have requested too many sources in a single request. "
                "Try splitting the request into 2 smaller requests.",
            )
        try:
            page_size = _int_param(req.params, "pageSize", default_size) or default_size
            page = _int_param(req.params, "page", 1) or 1
            window = self._news_window(req)
        except _BadParam as exc:
            return _news_error(400, "parameterInvalid", f"The {exc} parameter is invalid.")
        if not 1 <= page_size <= 100:
            return _news_error(400, "parameterInvalid", "pageSize must be between 1 and 100.")
        if page < 1:
            return _news_error(400, "parameterInvalid", "page must be 1 or greater.")
        if self.server.newsapi_developer_plan and (page - 1) * page_size >= 100:
            return _news_error(
                426,
                "maximumResultsReached",
                "You have requested too many results. Developer accounts are limited to a max of 100 results.",
            )
        query_key = "|".join(
            f"{k}={v}" for k, v in sorted(req.params.items()) if k not in ("page", "pageSize", "apiKey")
        )
        words = re.findall(r"[A-Za-z0-9^.\-]+", q)
        if any(self.server.is_unknown(w) for w in words if w.upper() not in ("AND", "OR", "NOT")):
            total = 0
        else:
            total = 20 + _hash64(path + query_key) % 480
        start, end = window
        topic = next((w for w in words if w.upper() not in ("AND", "OR", "NOT")), None) or (
            (req.get("category") or "Markets").title()
        )
        articles = [
            self._news_article(query_key, i, total, topic, start, end)
            for i in range((page - 1) * page_size, min(total, page * page_size))
        ]
        return _json(200, {"status": "ok", "totalResults": total, "articles": articles})

    def _news_window(self, req: _Request) -> tuple[float, float]:
        now = self.server.now()
        delay = _DAY if self.server.newsapi_developer_plan else 0

        def parse(name: str, default: float) -> float:
            raw = req.get(name)
            if not raw:
                return default
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError as exc:
                raise _BadParam(name) from exc
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

        end = min(parse("to", now - delay), now - delay)
        start = parse("from", end - 30 * _DAY)
        return start, max(start, end)

    @staticmethod
    def _news_article(query_key: str, i: int, total: int, topic: str, start: float, end: float) -> dict[str, Any]:
        seed = _hash64(f"{query_key}#{i}")
        source_id, source_name = _NEWS_SOURCES[seed % len(_NEWS_SOURCES)]
        published = end - (i + 1) * (end - start) / (total + 1)
        verb = _NEWS_VERBS[(seed >> 8) % len(_NEWS_VERBS)]
        reason = _NEWS_REASONS[(seed >> 16) % len(_NEWS_REASONS)]
        title = f"{topic} {verb} as {reason}"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        stamp = datetime.fromtimestamp(published, UTC)
        domain = (source_id or source_name.lower().replace(" ", "")).replace("the-", "")
        body = f"{title}. {topic} {verb} on {stamp:%A} as {reason}, according to market participants"
        return {
            "source": {"id": source_id, "name": source_name},
            "author": None if seed % 5 == 0 else _NEWS_AUTHORS[(seed >> 24) % len(_NEWS_AUTHORS)],
            "title": title,
            "description": None if seed % 11 == 0 else body[:160],
            "url": f"https://www.{domain}.com/markets/{stamp:%Y/%m/%d}/{slug}-{seed % 100000:05d}/",
            "urlToImage": None if seed % 7 == 0 else f"https://www.{domain}.com/img/{seed % 10**8:08d}.jpg",
            "publishedAt": _iso_s(published),
            "content": None if seed % 13 == 0 else f"{body} ... [+{1000 + seed % 4000} chars]",
        }


def _cmc_ok(now: float, credits: int) -> dict[str, Any]:
    return {
        "timestamp": _iso_ms(now),
        "error_code": 0,
        "error_message": None,
        "elapsed": 3,
        "credit_count": credits,
        "notice": None,
    }


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _key_arg(raw: str) -> tuple[str, str]:
    provider, sep, key = raw.partition("=")
    if not sep or provider not in _KEYED_PROVIDERS or not key:
        raise argparse.ArgumentTypeError(f"expected PROVIDER=KEY with PROVIDER in {', '.join(_KEYED_PROVIDERS)}")
    return provider, key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.providers.fake_server",
        description="Serve fake Yahoo/Binance/CoinGecko/Alpha Vantage/CoinMarketCap/NewsAPI on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--log-file", help="append one JSON line per provider request to this file")
    parser.add_argument(
        "--key",
        action="append",
        type=_key_arg,
        default=[],
        metavar="PROVIDER=KEY",
        help="require this API key for a provider (repeatable)",
    )
    parser.add_argument(
        "--unknown",
        action="append",
        default=[],
        metavar="SYMBOL",
        help="treat SYMBOL as unknown (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server = FakeProviderServer(
        port=args.port, log_file=args.log_file, keys=dict(args.key), unknown_symbols=args.unknown
    )
    server.start()
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass  # Ctrl-C is the documented way to stop the CLI
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
