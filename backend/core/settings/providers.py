"""Providers: live and fake base URLs, API keys, shared rate limits, circuit breaker, HTTP timeout.

Read when a worker builds its clients, never at import.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from ..environment import env_bool, env_float, env_int, env_str
from .django import REDIS_URL

# Live hosts; each can be overridden (a proxy, a regional mirror). Binance's market-data-only mirror
# needs no key and is not geo-blocked like api.binance.com.
COINGECKO_PRO = env_bool("COINGECKO_PRO", False)
PROVIDER_BASE_URLS = {
    "yahoo": env_str("YAHOO_BASE_URL", "https://query1.finance.yahoo.com"),
    "binance": env_str("BINANCE_BASE_URL", "https://data-api.binance.vision"),
    "coingecko": env_str(
        "COINGECKO_BASE_URL",
        "https://pro-api.coingecko.com/api/v3" if COINGECKO_PRO else "https://api.coingecko.com/api/v3",
    ),
    "alphavantage": env_str("ALPHA_VANTAGE_BASE_URL", "https://www.alphavantage.co"),
    "coinmarketcap": env_str("COINMARKETCAP_BASE_URL", "https://pro-api.coinmarketcap.com"),
    "newsapi": env_str("NEWSAPI_BASE_URL", "https://newsapi.org"),
}
# Where Yahoo's session cookie comes from (yfinance's "basic" strategy).
YAHOO_COOKIE_URL = env_str("YAHOO_COOKIE_URL", "https://fc.yahoo.com")
# MARKET_DATA_MODE=fake: the fake server (python -m backend.fake_provider), one path per provider.
FAKE_PROVIDER_URL = env_str("FAKE_PROVIDER_URL", "http://127.0.0.1:8765")
# Keys: empty means "not configured"; in live mode a provider that needs one is left out of its chain.
ALPHA_VANTAGE_API_KEY = env_str("ALPHA_VANTAGE_API_KEY")
COINGECKO_API_KEY = env_str("COINGECKO_API_KEY")
COINMARKETCAP_API_KEY = env_str("COINMARKETCAP_API_KEY")
NEWSAPI_API_KEY = env_str("NEWSAPI_API_KEY")
# Request quotas shared by every worker (``limits`` strings, several joined by ";"; empty = no limit).
# Defaults sit under the free plans: CoinGecko demo 30/min, CMC basic 30/min, Alpha Vantage free
# 25/day, NewsAPI developer 100/day; Binance allows 6000 weight/min (a 20-symbol ticker costs 2).
PROVIDER_RATE_LIMITS = {
    "yahoo": env_str("YAHOO_RATE_LIMIT", "2/second"),
    "binance": env_str("BINANCE_RATE_LIMIT", "10/second"),
    "coingecko": env_str("COINGECKO_RATE_LIMIT", "30/minute"),
    "alphavantage": env_str("ALPHA_VANTAGE_RATE_LIMIT", "5/minute;25/day"),
    "coinmarketcap": env_str("COINMARKETCAP_RATE_LIMIT", "30/minute"),
    "newsapi": env_str("NEWSAPI_RATE_LIMIT", "100/day"),
}
# Longest a request waits for a quota slot before its provider is treated as unavailable (failover).
PROVIDER_RATE_LIMIT_MAX_WAIT = env_float("PROVIDER_RATE_LIMIT_MAX_WAIT", 10.0)
# Circuit breaker per provider: open after N consecutive transient failures, probe again after the cool-down.
BREAKER_FAILURE_THRESHOLD = env_int("BREAKER_FAILURE_THRESHOLD", 5)
BREAKER_RESET_SECONDS = env_float("BREAKER_RESET_SECONDS", 60.0)
# Per-request timeout of provider HTTP calls (seconds).
PROVIDER_HTTP_TIMEOUT = env_float("PROVIDER_HTTP_TIMEOUT", 10.0)
# Requests one batched quote call may have in flight at once (after its first); quotas still hold.
PROVIDER_REQUEST_CONCURRENCY = env_int("PROVIDER_REQUEST_CONCURRENCY", 4)
if not 1 <= PROVIDER_REQUEST_CONCURRENCY <= 32:
    raise ImproperlyConfigured(f"PROVIDER_REQUEST_CONCURRENCY must be 1 to 32, not {PROVIDER_REQUEST_CONCURRENCY}")
# Where limiter and breaker state is shared between workers: REDIS_URL unless set; empty = per process.
PROVIDER_STATE_REDIS_URL = env_str("PROVIDER_STATE_REDIS_URL", REDIS_URL)
# Prefix of those Redis keys, so two deployments (or test runs) on one Redis keep apart.
PROVIDER_STATE_PREFIX = env_str("PROVIDER_STATE_PREFIX", "financehub")
