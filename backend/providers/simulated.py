"""An offline provider: a deterministic random walk per symbol, no network.

It is the embedded default, so a fresh checkout stores real-looking quotes and
bars with no key and no server. The same symbol at the same minute always gives
the same price, in every process, so tests and redeliveries agree.

Each walk wanders around a base price: the symbol's reference price when the caller
passes one (the demo asset file carries a plausible level per asset, so BTC trades in
the tens of thousands and DOGE in cents), else a level derived from the symbol's hash.

A walk alone would keep a stock moving on a Sunday. A real provider asked while the exchange is
closed answers with the regular session's last trade, stamped at the close (Yahoo's
``regularMarketPrice`` and ``regularMarketTime``), until the next session opens. So the caller may
pass ``market_clocks``, asked once per quote call for the market clock of each symbol (the provider
knows no asset's exchange; the task layer reads it from the database): a symbol whose market is not
in session is quoted at its last close, priced as a fetch at that minute would have been, and its
running bar is that session's bar. A symbol without a clock (crypto, news, a bare client) is priced
when asked.

For rehearsing failures on a demo stack the caller may pass ``fault_rate``, a callable asked
before every call for the share of calls (0 to 1) that fail as a transient provider fault. The
task layer reads it from state every worker shares (``backend/tasks/rehearsal.py``).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from backend.common.exchange_sessions import MarketClock

from .errors import TransientProviderError
from .models import Article, Bar, Quote, QuoteBatch

# (symbols, moment) -> the market clock of each symbol at that moment; a symbol left out is always open.
MarketClocks = Callable[[Sequence[str], datetime], Mapping[str, MarketClock]]

INTERVAL_SECONDS = {"5m": 300, "1h": 3600, "1d": 86400}
_DAILY_VOLATILITY = 0.02
_HEADLINES = (
    "{symbol} shares move as traders weigh the latest guidance",
    "Analysts revisit their {symbol} targets after a volatile week",
    "What the newest filing says about {symbol}",
    "{symbol} in focus as volumes pick up",
)
_CENT = Decimal("0.0001")


def _seed(symbol: str, step: int) -> int:
    digest = hashlib.blake2b(f"{symbol}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _hashed_base_price(symbol: str) -> float:
    # No reference price: spread symbols over 5 .. 5,000 so an unknown universe looks varied.
    return 5 * 10 ** (3 * (_seed(symbol, -1) % 1000) / 1000)


def _price_at(symbol: str, step: int, step_seconds: int, base: float) -> float:
    """Price at a step: ``base`` moved by a seeded log-normal shock per step.

    A step's shock depends only on (symbol, step), and the walk is anchored to the
    base price through a slow mean reversion, so any step is computable in O(1).
    """
    sigma = _DAILY_VOLATILITY * math.sqrt(step_seconds / 86400)
    shock = random.Random(_seed(symbol, step)).gauss(0.0, 1.0)
    drift = 0.15 * math.sin(step * step_seconds / (86400 * 7) + _seed(symbol, -2) % 7)
    return base * math.exp(drift + 4 * sigma * shock)


def _dec(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_CENT)


def floor_time(moment: datetime, interval: str) -> datetime:
    """Floor an aware UTC moment to the start of its ``interval`` bucket."""
    seconds = INTERVAL_SECONDS[interval]
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def _priced_at(clock: MarketClock | None, now: datetime) -> datetime:
    """The moment a quote asked for at ``now`` is priced at: the last close while the market is closed.

    Between sessions a real provider reports the last regular trade, so the price holds from the
    close until the next open instead of walking on; extended-hours trades are not the regular price.
    A close after ``now`` (a clock from elsewhere) is never priced: that would quote the future.
    """
    if clock is None or clock.in_session or clock.last_close is None:
        return now
    return min(clock.last_close, now)


def _running(bar: Bar, price: Decimal) -> Bar:
    """Today's bar as of now: it closes at the current quote, and its range includes it."""
    return replace(bar, close=price, high=max(bar.high, price), low=min(bar.low, price))


class SimulatedClient:
    """Quotes and bars from a seeded random walk; serves any well-formed symbol."""

    name = "simulated"
    batch_limit = 1000

    def __init__(
        self,
        *,
        clock: type[datetime] = datetime,
        reference_prices: Mapping[str, float] | None = None,
        fault_rate: Callable[[], float] | None = None,
        draw: Callable[[], float] = random.random,
        market_clocks: MarketClocks | None = None,
    ) -> None:
        self._clock = clock
        self._fault_rate = fault_rate
        self._market_clocks = market_clocks
        self._draw = draw
        # A level that is not a finite positive number would make every price of the walk invalid.
        levels = {symbol: float(price) for symbol, price in (reference_prices or {}).items()}
        self._reference_prices = {
            symbol: level for symbol, level in levels.items() if math.isfinite(level) and level > 0
        }

    def _now(self) -> datetime:
        return self._clock.now(tz=UTC)

    def _rehearse_fault(self, operation: str) -> None:
        """Fail this call on purpose with the rehearsal's probability, as a real provider outage would."""
        rate = self._fault_rate() if self._fault_rate is not None else 0.0
        if rate > 0 and self._draw() < rate:
            raise TransientProviderError(
                f"{operation} failed on purpose: fault rehearsal, {rate:.0%} of calls fail", provider=self.name
            )

    def base_price(self, symbol: str) -> float:
        """The level ``symbol``'s walk wanders around: its reference price, else one from its hash."""
        return self._reference_prices.get(symbol) or _hashed_base_price(symbol)

    def bar_at(self, symbol: str, interval: str, start: datetime) -> Bar:
        """The bar of ``symbol`` that opens at ``start`` (already floored)."""
        seconds = INTERVAL_SECONDS[interval]
        step = int(start.timestamp()) // seconds
        base = self.base_price(symbol)
        sub = [_price_at(symbol, step * 4 + i, seconds // 4, base) for i in range(5)]
        open_, close = sub[0], sub[-1]
        volume = 1_000 + _seed(symbol, step) % 1_000_000
        return Bar(
            symbol=symbol,
            interval=interval,
            timestamp=start,
            open=_dec(open_),
            high=_dec(max(sub)),
            low=_dec(min(sub)),
            close=_dec(close),
            volume=Decimal(volume),
            source=self.name,
        )

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Quote every symbol at the current minute, with today's running daily bar; a symbol whose
        market is closed (``market_clocks``) at its last close, with that session's bar."""
        self._rehearse_fault("quotes")
        now = self._now()
        clocks = self._market_clocks(symbols, now) if self._market_clocks is not None and symbols else {}
        quotes: list[Quote] = []
        bars: list[Bar] = []
        for symbol in symbols:
            quote, bar = self._quote_at(symbol, _priced_at(clocks.get(symbol), now))
            quotes.append(quote)
            bars.append(bar)
        return QuoteBatch(quotes=tuple(quotes), bars=tuple(bars))

    def _quote_at(self, symbol: str, moment: datetime) -> tuple[Quote, Bar]:
        """The quote and running daily bar a fetch at ``moment`` gives: the walk at that minute."""
        minute = int(moment.timestamp()) // 60
        base = self.base_price(symbol)
        price = _price_at(symbol, minute, 60, base)
        day_ago = _price_at(symbol, minute - 1440, 60, base)
        quote = Quote(
            symbol=symbol,
            price=_dec(price),
            timestamp=moment.replace(second=0, microsecond=0),
            source=self.name,
            change_24h_pct=_dec(100 * (price / day_ago - 1)),
            volume_24h=Decimal(10_000 + _seed(symbol, minute // 1440) % 10_000_000),
        )
        return quote, _running(self.bar_at(symbol, "1d", floor_time(moment, "1d")), quote.price)

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """The last ``limit`` closed-or-running bars of ``symbol``, oldest first."""
        self._rehearse_fault("bars")
        last = floor_time(self._now(), interval)
        step = timedelta(seconds=INTERVAL_SECONDS[interval])
        return [self.bar_at(symbol, interval, last - step * back) for back in range(limit - 1, -1, -1)]

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 1) -> list[Article]:
        """A few articles per symbol named in ``query`` (words joined by OR), one per hour, newest first."""
        self._rehearse_fault("news")
        now = self._now()
        hour = int(now.timestamp()) // 3600
        symbols = [word for word in query.replace("(", " ").replace(")", " ").split() if word.upper() != "OR"]
        articles = []
        for symbol in symbols:
            for back in range(3):
                published = datetime.fromtimestamp((hour - back) * 3600, tz=UTC)
                if since is not None and published < since:
                    continue
                headline = _HEADLINES[_seed(symbol, hour - back) % len(_HEADLINES)].format(symbol=symbol)
                articles.append(
                    Article(
                        url=f"https://news.example.com/{symbol.lower()}/{hour - back}",
                        title=headline,
                        published_at=published,
                        source=self.name,
                        summary=f"Simulated coverage of {symbol}.",
                        publisher="FinanceHub Simulated Wire",
                        symbols=(symbol,),
                    )
                )
        return sorted(articles, key=lambda a: a.published_at, reverse=True)
