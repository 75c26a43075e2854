"""Generated market data: deterministic prices and bars per asset, the same on every run."""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from backend.common.exchange_sessions import (
    POST_MARKET_LENGTH,
    Phase,
    is_session_day,
    market_clock,
    session_bounds,
)

NEW_YORK = ZoneInfo("America/New_York")
# US equities follow this exchange's calendar (holidays, early closes) like the real providers do.
CALENDAR = "XNYS"


LONDON = ZoneInfo("Europe/London")


DAY = 86400


MONTH = -1  # sentinel "step" for calendar-month intervals; -3 is a quarter


MAX_BARS = 50_000


_MASK64 = (1 << 64) - 1


_TAU = 2 * math.pi


# (period seconds, log-amplitude) of the slow waves every generated price rides on.
_WAVES = ((9.3 * DAY, 0.045), (1.7 * DAY, 0.015), (3.1 * 3600, 0.004))


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
FIAT_USD = {
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
COINS = {
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


CG_TO_SYMBOL = {row[0]: sym for sym, row in COINS.items()}


CMC_ID_TO_SYMBOL = {row[2]: sym for sym, row in COINS.items()}


CMC_SLUG_TO_SYMBOL = {row[3]: sym for sym, row in COINS.items()}


NAMES = {
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


def hash64(text: str) -> int:
    """A stable 64-bit hash of ``text`` (the seed of every generated number)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def unit_hash(seed: int, k: int) -> float:
    """A uniform [0, 1) draw for (seed, k): splitmix64, so any bar is O(1) with no state."""
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return ((z ^ (z >> 31)) >> 11) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class Profile:
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

    def scaled(self, factor: float) -> Profile:
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
        x += 0.003 * (unit_hash(self.seed, int(t)) - 0.5)
        return self.price * math.exp(x * self.amp)

    def bar(self, t: float, length: float) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, base volume) of the bar opening at ``t``."""
        o = self.price_at(t)
        c = self.price_at(t + length)
        k = int(t)
        spread = (0.001 + 0.01 * min(1.0, length / DAY)) * self.amp
        h = max(o, c) * (1 + spread * unit_hash(self.seed ^ 0x51, k))
        lo = min(o, c) * (1 - spread * unit_hash(self.seed ^ 0x52, k))
        v = self.volume * (length / DAY) * (0.5 + unit_hash(self.seed ^ 0x53, k))
        return o, h, lo, c, v


@lru_cache(maxsize=65536)
def profile(asset: str) -> Profile:
    """The generated price profile of an asset (anchored for well-known ones, hashed otherwise)."""
    seed = hash64(asset)
    u = [unit_hash(seed, i) for i in range(8)]
    stable = asset in _STABLE
    amp = 0.02 if stable else 1.0
    price = _ANCHORS.get(asset) or round(10 ** (3 * u[0]), 2)
    prev_close = price / (1 + (u[1] - 0.5) * 0.08 * amp)
    open_ = prev_close * (1 + (u[2] - 0.5) * 0.004 * amp)
    return Profile(
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
        phases=(_TAU * u[7], _TAU * unit_hash(seed, 8), _TAU * unit_hash(seed, 9)),
    )


def usd_value(asset: str) -> float:
    """The USD level of an asset, or of a fiat currency."""
    return FIAT_USD[asset] if asset in FIAT_USD else profile(asset).price


@lru_cache(maxsize=65536)
def pair_profile(base: str, quote: str) -> Profile:
    """A ``base`` priced in ``quote`` (ETHBTC, BTC-EUR, EURUSD=X)."""
    if base in FIAT_USD and quote in FIAT_USD:
        return fx_profile(base, quote)
    return profile(base).scaled(1.0 / usd_value(quote))


def fx_profile(base: str, quote: str) -> Profile:
    """FX: the path belongs to the pair, the level comes from the two currencies, moves are small."""
    p = profile(base + quote + "=X")
    rate = FIAT_USD[base] / usd_value(quote)
    quiet = dataclasses.replace(p, amp=0.1)
    return quiet.scaled(rate / quiet.price)


def iso_ms(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_s(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC with whole seconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def num_value(x: float, nan: bool, digits: int = 2) -> float:
    """A rounded price as a JSON number, or NaN when the nan fault is on."""
    return math.nan if nan else round(x, digits)


def num_text(x: float, nan: bool, digits: int = 8) -> str:
    """A price as a fixed-point string (string-priced APIs), or "NaN" when the nan fault is on."""
    return "NaN" if nan else f"{x:.{digits}f}"


def price_digits(price: float) -> int:
    """How many decimals a price of this size is quoted with."""
    return 2 if price >= 1 else 6


def add_months(moment: datetime, months: int) -> datetime:
    """The first day of the month ``months`` calendar months after ``moment`` (same time of day)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=1)


def months_back(moment: datetime, months: int) -> datetime:
    """``moment`` shifted back by whole calendar months, the day clamped to the target month."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, calendar.monthrange(year, month + 1)[1]))


def month_starts(start: float, end: float, months: int, tz: Any = UTC) -> list[float]:
    """Epoch seconds of each ``months``-long calendar bucket start in [start, end)."""
    first = datetime.fromtimestamp(start, tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = first.replace(month=(first.month - 1) // months * months + 1)
    out = []
    moment = first
    while moment.timestamp() < end and len(out) < MAX_BARS:
        if moment.timestamp() >= start:
            out.append(moment.timestamp())
        moment = add_months(moment, months)
    return out


def aligned_times(step: int, start: float, end: float, *, offset: int = 0, limit: int = MAX_BARS) -> list[int]:
    """Open times of fixed-size buckets (aligned to epoch + ``offset``) in [start, end)."""
    first = math.ceil((start - offset) / step) * step + offset
    count = max(0, min(limit, math.ceil((end - first) / step)))
    return [int(first + i * step) for i in range(count)]


# Answered per minute from a cache: a quote reply asks this for every row, and the calendar lookups are
# pandas calls costly enough to make the fake server, not the platform, the bottleneck of a benchmark.
# A session opens and closes on the minute, so at most one change falls in a minute; when both ends
# of the minute agree, the whole minute does.
def latest_session_day(now: float) -> date:
    """The New York trading day whose session is open now or closed most recently (real calendar)."""
    start = now // 60 * 60
    first, last = _latest_session_day_at(start), _latest_session_day_at(start + 59.999)
    return first if first == last else _latest_session_day_at(now)


@lru_cache(maxsize=64)
def _latest_session_day_at(now: float) -> date:
    clock = market_clock(CALENDAR, datetime.fromtimestamp(now, UTC))
    if clock.phase is Phase.OPEN or clock.last_close is None:
        return clock.day
    return clock.last_close.astimezone(NEW_YORK).date()


def session_open_ts(day: date) -> float:
    """Unix time of ``day``'s regular open; ``day`` must be a trading day."""
    return _bounds(day)[0].timestamp()


def session_close_ts(day: date) -> float:
    """Unix time of ``day``'s regular close (13:00 on early-close days); ``day`` must be a trading day."""
    return _bounds(day)[1].timestamp()


def post_market_end_ts(day: date) -> float:
    """Unix time extended trading ends after ``day``'s close."""
    return session_close_ts(day) + POST_MARKET_LENGTH.total_seconds()


def is_trading_day(day: date) -> bool:
    """Whether New York trades on ``day`` (weekends and exchange holidays do not)."""
    return is_session_day(CALENDAR, day)


def previous_trading_day(day: date) -> date:
    """The trading day before ``day``."""
    day -= timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


@lru_cache(maxsize=4096)
def _bounds(day: date) -> tuple[datetime, datetime]:
    bounds = session_bounds(CALENDAR, day)
    if bounds is None:
        raise ValueError(f"{day} is not a trading day")
    return bounds


def ny_ts(day: date, at: dtime) -> float:
    """Epoch seconds of a New York wall-clock time on ``day``."""
    return datetime.combine(day, at, NEW_YORK).timestamp()
