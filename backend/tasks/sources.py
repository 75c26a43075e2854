"""Which providers serve which data, built lazily on first use inside the worker process.

Nothing here runs at import: clients, the shared rate limiter and the circuit breaker are built
the first time a task asks for a source, after the worker has forked, from the settings of that
moment. ``MARKET_DATA_MODE`` picks the providers:

* ``simulated`` (default): the offline random walk, for every asset class;
* ``fake``: the real clients pointed at the fake server (``FAKE_PROVIDER_URL`` + ``/<provider>``);
* ``live``: the real clients on ``PROVIDER_BASE_URLS`` with the keys from settings; a provider
  whose key is required but not set is left out of its chains (logged once per process).

Chains (first provider first):

=============  ===================================  ======================
asset class    quotes                               bars
=============  ===================================  ======================
crypto         Binance, CoinGecko, CoinMarketCap    Binance, CoinGecko
stock          Yahoo, Alpha Vantage                 Yahoo, Alpha Vantage
=============  ===================================  ======================

News comes from NewsAPI. Every HTTP request takes a slot of its provider's shared quota
(``PROVIDER_RATE_LIMITS``) and every provider call goes through its circuit breaker; both keep
their state in Redis (``PROVIDER_STATE_REDIS_URL``, REDIS_URL by default) when there is one.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings

from backend.market.conditions import ALWAYS_OPEN_CLASSES, market_clocks
from backend.market.demo import reference_prices
from backend.market.models import Asset
from backend.providers.alphavantage import AlphaVantageClient
from backend.providers.binance import BinanceClient
from backend.providers.breaker import CircuitBreaker, build_breaker
from backend.providers.coingecko import CoinGeckoClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.errors import UnknownSymbolError
from backend.providers.http import build_client
from backend.providers.models import Article, Bar, QuoteBatch, Rejected
from backend.providers.newsapi import NewsApiClient
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.ratelimit import RateLimiter, guard_client
from backend.providers.simulated import SimulatedClient
from backend.providers.yahoo import YahooClient

from . import rehearsal
from .telemetry import provider_observer

logger = logging.getLogger(__name__)

QUOTE_CHAINS = {"crypto": ("binance", "coingecko", "coinmarketcap"), "stock": ("yahoo", "alphavantage")}
BAR_CHAINS = {"crypto": ("binance", "coingecko"), "stock": ("yahoo", "alphavantage")}
NEWS_CHAIN = ("newsapi",)
# Providers that refuse every call without a key; CoinGecko works keyless on a shared per-IP quota.
KEY_SETTINGS = {
    "alphavantage": "ALPHA_VANTAGE_API_KEY",
    "coingecko": "COINGECKO_API_KEY",
    "coinmarketcap": "COINMARKETCAP_API_KEY",
    "newsapi": "NEWSAPI_API_KEY",
}
KEY_REQUIRED = frozenset({"alphavantage", "coinmarketcap", "newsapi"})
# The fake server accepts any key unless started with keys=...; clients that insist on one get this.
FAKE_KEY = "fake-key"
CLIENT_CLASSES: dict[str, Callable[..., Any]] = {
    "yahoo": YahooClient,
    "binance": BinanceClient,
    "coingecko": CoinGeckoClient,
    "alphavantage": AlphaVantageClient,
    "coinmarketcap": CoinMarketCapClient,
    "newsapi": NewsApiClient,
}


@dataclass(frozen=True, slots=True)
class AssetIds:
    """An asset's own id and the columns its provider ids come from: a batch loads hundreds, as tuples."""

    pk: int
    symbol: str
    binance_symbol: str = ""
    coingecko_id: str = ""
    unknown_streak: int = 0


class AssetSource:
    """Our symbols in, our symbols out: looks up each asset's provider ids, then asks the chains."""

    def __init__(self, asset_class: str, quotes: ProviderChain, bars: ProviderChain) -> None:
        self.asset_class = asset_class
        self.quotes = quotes
        self.bars = bars
        self.name = quotes.name

    def __repr__(self) -> str:
        return f"AssetSource({self.asset_class!r}, quotes={self.quotes.name!r}, bars={self.bars.name!r})"

    def fetch_quotes(self, symbols: list[str]) -> QuoteBatch:
        """Quotes for our ``symbols``; symbols with no asset row are rejected without a provider call."""
        assets = Asset.objects.filter(symbol__in=list(symbols)).in_bulk(field_name="symbol")
        batch = self.fetch_asset_quotes([assets[s] for s in dict.fromkeys(symbols) if s in assets])
        unknown = tuple(Rejected(s, "not a known asset") for s in dict.fromkeys(symbols) if s not in assets)
        return replace(batch, rejected=batch.rejected + unknown) if unknown else batch

    def fetch_asset_quotes(self, assets: Sequence[Asset | AssetIds]) -> QuoteBatch:
        """Quotes for assets the caller already loaded (no query here)."""
        instruments = [instrument_of(self.asset_class, asset) for asset in assets]
        return self.quotes.fetch_quotes(instruments) if instruments else QuoteBatch()

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Bars of one of our symbols from the first bar provider that has them."""
        asset = Asset.objects.filter(symbol=symbol).first()
        if asset is None:
            raise UnknownSymbolError(f"{symbol[:20]!r} is not a known asset")
        return self.fetch_asset_bars(asset, interval=interval, limit=limit)

    def fetch_asset_bars(self, asset: Asset, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Bars of an asset the caller already loaded (no query here)."""
        return self.bars.fetch_bars(instrument_of(self.asset_class, asset), interval=interval, limit=limit)


@dataclass
class NewsSource:
    """News from the news chain; with no provider configured (live mode, no key) it serves nothing."""

    chain: ProviderChain

    @property
    def name(self) -> str:
        return self.chain.name

    @property
    def configured(self) -> bool:
        """Whether any news provider is in the chain."""
        return bool(self.chain.providers)

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 3) -> list[Article]:
        """Articles matching ``query``, newest first."""
        return self.chain.fetch_articles(query, since=since, max_pages=max_pages)


def instrument_of(asset_class: str, asset: Asset | AssetIds) -> Instrument:
    """One of our assets with each provider's identifier for it."""
    ids = provider_ids(asset_class, asset.symbol, binance_symbol=asset.binance_symbol, coingecko_id=asset.coingecko_id)
    return Instrument(asset.symbol, ids)


def provider_ids(asset_class: str, symbol: str, *, binance_symbol: str = "", coingecko_id: str = "") -> dict[str, str]:
    """Each provider's identifier for one of our assets (empty ones are left out)."""
    # A batch builds these for hundreds of assets: plain literals, empties dropped only where they can be.
    if asset_class == "crypto":
        ids = {"simulated": symbol, "binance": binance_symbol, "coingecko": coingecko_id, "coinmarketcap": symbol}
        return ids if binance_symbol and coingecko_id else {p: v for p, v in ids.items() if v}
    if asset_class == "stock":
        # Yahoo spells share classes with a hyphen (BRK-B); exchanges and Alpha Vantage use the dot.
        return {"simulated": symbol, "yahoo": symbol.replace(".", "-"), "alphavantage": symbol}
    return {"simulated": symbol}


# --- lazily built, per process ------------------------------------------------------------------

_lock = threading.RLock()
_sources: dict[str, AssetSource] = {}
_news: dict[str, NewsSource] = {}
_clients: dict[tuple[str, str], Any] = {}
_http: list[httpx.Client] = []
_shared: dict[str, Any] = {}
_left_out: set[str] = set()


def quote_source(asset_class: str) -> AssetSource:
    """The quote (and bar) source for an asset class under the configured MARKET_DATA_MODE."""
    mode = settings.MARKET_DATA_MODE
    key = f"{mode}:{asset_class}"
    with _lock:
        if key not in _sources:
            _sources[key] = _build_source(mode, asset_class)
        return _sources[key]


def warm_up() -> None:
    """Build the quote sources of every asset class now (a pool process at start). A configuration the
    clients refuse is logged here and raised again by the first fetch that needs it."""
    for asset_class in QUOTE_CHAINS:
        try:
            quote_source(asset_class)
        except ValueError as exc:
            logger.warning("%s quote sources not built at start: %s", asset_class, exc)


def news_source() -> NewsSource:
    """The news source under the configured MARKET_DATA_MODE (simulated articles when offline)."""
    mode = settings.MARKET_DATA_MODE
    with _lock:
        if mode not in _news:
            chain = ProviderChain([simulated_client()]) if mode == "simulated" else _chain(mode, NEWS_CHAIN, "news")
            _news[mode] = NewsSource(chain)
        return _news[mode]


def simulated_client(asset_class: str | None = None) -> SimulatedClient:
    """The offline provider, its prices starting from the demo asset file's reference prices; it fails on
    purpose while an operator rehearses an outage (``rehearse_faults``).

    For an ``asset_class`` that trades on an exchange calendar (stocks) it is given each asset's market
    clock, so a stock whose exchange is closed is quoted at its last close, as a real provider quotes
    it, instead of walking on through the weekend. Crypto and news need no calendar.
    """
    clocks = None
    if asset_class is not None and asset_class not in ALWAYS_OPEN_CLASSES:
        clocks = functools.partial(market_clocks, asset_class)
    return SimulatedClient(
        reference_prices=reference_prices(settings.DEMO_ASSETS_FILE),
        fault_rate=rehearsal.fault_rate,
        market_clocks=clocks,
    )


def circuit_breaker() -> CircuitBreaker:
    """This process's breaker (shared state through Redis when configured); for metrics and admin."""
    with _lock:
        return _shared_state()[1]


def reset_sources() -> None:
    """Forget built sources, clients, limiter and breaker (tests, or after settings change)."""
    with _lock:
        for http in _http:
            http.close()
        for registry in (_sources, _news, _clients, _shared):
            registry.clear()
        _http.clear()
        _left_out.clear()


def _build_source(mode: str, asset_class: str) -> AssetSource:
    if mode == "simulated":
        simulated = ProviderChain([simulated_client(asset_class)])
        return AssetSource(asset_class, simulated, simulated)
    if asset_class not in QUOTE_CHAINS:
        raise ValueError(f"no provider chain for asset class {asset_class!r} (known: {', '.join(QUOTE_CHAINS)})")
    quotes = _chain(mode, QUOTE_CHAINS[asset_class], f"{asset_class} quotes")
    bars = _chain(mode, BAR_CHAINS[asset_class], f"{asset_class} bars")
    logger.info("%s sources (%s mode): quotes %s, bars %s", asset_class, mode, quotes.name, bars.name)
    return AssetSource(asset_class, quotes, bars)


def _chain(mode: str, providers: Sequence[str], purpose: str) -> ProviderChain:
    clients = [client for p in providers if (client := _client(mode, p, purpose)) is not None]
    return ProviderChain(clients, breaker=_shared_state()[1], observer=provider_observer)


def _client(mode: str, provider: str, purpose: str) -> Any | None:
    """The one client of ``provider`` in this process, or None when live mode lacks its key."""
    if (mode, provider) in _clients:
        return _clients[(mode, provider)]
    key = getattr(settings, KEY_SETTINGS[provider]) if provider in KEY_SETTINGS else None
    if mode == "live" and provider in KEY_REQUIRED and not key:
        if provider not in _left_out:
            _left_out.add(provider)
            logger.warning("%s left out of the %s chain: %s is not set", provider, purpose, KEY_SETTINGS[provider])
        return None
    options: dict[str, Any] = {}
    if mode == "fake":
        base_url = settings.FAKE_PROVIDER_URL.rstrip("/") + "/" + provider
        key = key or (FAKE_KEY if provider in KEY_SETTINGS else None)
    elif mode == "live":
        base_url = settings.PROVIDER_BASE_URLS[provider]
        if provider == "yahoo":
            options["cookie_url"] = settings.YAHOO_COOKIE_URL
        if provider == "coingecko":
            options["pro"] = settings.COINGECKO_PRO
    else:
        raise ValueError(f"MARKET_DATA_MODE {mode!r} has no real providers")
    http = build_client(timeout=settings.PROVIDER_HTTP_TIMEOUT)
    _http.append(http)
    guard_client(http, _shared_state()[0], provider, timeout=settings.PROVIDER_RATE_LIMIT_MAX_WAIT)
    client = CLIENT_CLASSES[provider](http, base_url=base_url, api_key=key or None, **options)
    client.send_concurrently(settings.PROVIDER_REQUEST_CONCURRENCY)
    _clients[(mode, provider)] = client
    return client


def _shared_state() -> tuple[RateLimiter, CircuitBreaker]:
    """The process's limiter and breaker, built once from settings."""
    if not _shared:
        redis_url = settings.PROVIDER_STATE_REDIS_URL or None
        prefix = settings.PROVIDER_STATE_PREFIX
        _shared["limiter"] = RateLimiter(redis_url, settings.PROVIDER_RATE_LIMITS, namespace=prefix)
        _shared["breaker"] = build_breaker(
            redis_url,
            prefix=prefix,
            failure_threshold=settings.BREAKER_FAILURE_THRESHOLD,
            reset_seconds=settings.BREAKER_RESET_SECONDS,
            # A probe may take every request of one call; past this another caller may probe.
            probe_timeout=max(settings.PROVIDER_HTTP_TIMEOUT * 3, 30.0),
        )
        logger.info("provider state: limiter %r, breaker %r", _shared["limiter"], _shared["breaker"])
    return _shared["limiter"], _shared["breaker"]
