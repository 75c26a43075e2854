"""Binance spot public market data: 24 h tickers (batched) and klines.

Identifiers are Binance-native pairs (``BTCUSDT``), not our asset symbols: ``fetch_quotes`` returns
``Quote.symbol`` equal to the pair that was passed in and the caller maps it back to its asset.
``Quote.currency`` is the pair's quote asset (``USDT`` for ``BTCUSDT``) and ``volume_24h`` is the
rolling 24 h volume in that quote asset (``quoteVolume``), so it compares with CoinGecko/CMC volumes.

No key is needed for these endpoints; limits are per IP (request weight, see ``batch_limit``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backend.providers.base import ProviderClient
from backend.providers.errors import (
    MalformedReplyError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from backend.providers.http import join_url, strip_control
from backend.providers.models import Bar, Quote, QuoteBatch, Rejected
from backend.providers.validation import (
    PAIR,
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
)

logger = logging.getLogger(__name__)

# Binance kline intervals are the same spelling as our neutral ones for everything we support.
SUPPORTED_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")
MAX_KLINES = 1000
# Longest first, so "FDUSD" wins over "USD"-like tails and "ETHBTC" resolves to BTC.
QUOTE_ASSETS = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "FDUSD",
            "TUSD",
            "BUSD",
            "DAI",
            "EUR",
            "GBP",
            "TRY",
            "BRL",
            "JPY",
            "BTC",
            "ETH",
            "BNB",
        ),
        key=len,
        reverse=True,
    )
)
_INVALID_SYMBOL = -1121
_BAD_INTERVAL = -1120


class BinanceClient(ProviderClient):
    """Binance spot REST client for public market data (tickers and klines)."""

    name = "binance"
    # ticker/24hr weight: 1-20 symbols cost 2, 21-100 cost 40, so batches of 20 are the cheapest per symbol.
    batch_limit = 20

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Fetch 24 h tickers for Binance pairs, ``batch_limit`` per request; bad pairs are ``Rejected``."""
        # Reference: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#24hr-ticker-price-change-statistics
        return self._quotes_in_batches(symbols, pattern=PAIR, fetch=self._fetch_ticker_batch)

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Fetch up to ``limit`` klines for one pair, oldest first, timestamps UTC floored to ``interval``."""
        # Reference: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#klinecandlestick-data
        split = split_symbols([symbol], pattern=PAIR)
        if split[1]:
            raise UnknownSymbolError(split[1][0].reason, provider=self.name)
        check_interval(interval, SUPPORTED_INTERVALS)
        check_limit(limit, maximum=MAX_KLINES)
        params = {"symbol": symbol, "interval": interval, "limit": limit}
        raw = self._get_json(join_url(self._base_url, "/api/v3/klines"), params=params, error_hook=self._error_hook)
        if not isinstance(raw, list):
            raise MalformedReplyError(f"{self.name}: klines reply is not a list", provider=self.name)
        now = self._clock()
        bars: list[Bar] = []
        for row in raw:
            try:
                bars.append(_to_bar(row, symbol=symbol, interval=interval, now=now))
            except InvalidRecordError as exc:
                logger.warning("binance dropped a kline for %s: %s", symbol, strip_control(exc))
        return keep_last_per_timestamp(bars, limit)

    # --- one request per batch ----------------------------------------------------------------------

    def _fetch_ticker_batch(self, batch: Sequence[str]) -> tuple[list[Quote], list[Rejected]]:
        """One ``ticker/24hr`` request; an unknown pair fails it whole (-1121) and the base class bisects."""
        # Reference: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#24hr-ticker-price-change-statistics
        params = {"symbols": json.dumps(list(batch), separators=(",", ":"))}
        raw = self._get_json(
            join_url(self._base_url, "/api/v3/ticker/24hr"), params=params, error_hook=self._error_hook
        )
        return _map_tickers(raw, batch, now=self._clock())

    def _error_hook(self, status: int, body: Any, url: str) -> ProviderError | None:
        code = body.get("code") if isinstance(body, dict) else None
        msg = strip_control(body.get("msg", ""), 120) if isinstance(body, dict) else ""
        if code == _INVALID_SYMBOL:
            return UnknownSymbolError(f"binance: unknown symbol (-1121) ({url}): {msg}", provider=self.name)
        if code == _BAD_INTERVAL:
            return PermanentProviderError(f"binance: invalid interval ({url}): {msg}", provider=self.name)
        if status == 403:
            # Binance answers 403 for its WAF and some rate-limit trips; no key is involved here.
            return TransientProviderError(f"binance: HTTP 403 (WAF block) from {url}", provider=self.name)
        return None


def _map_tickers(raw: Any, batch: Sequence[str], *, now: datetime | None) -> tuple[list[Quote], list[Rejected]]:
    """Turn a ``ticker/24hr`` array into quotes for the requested pairs; missing or bad ones are rejected."""
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise MalformedReplyError("binance: ticker reply is not a list", provider="binance")
    by_symbol = {row.get("symbol"): row for row in raw if isinstance(row, dict)}
    return map_batch(
        batch,
        by_symbol.get,
        lambda _, row: _to_quote(row, now=now),
        provider="binance",
        missing="symbol missing from the reply",
        # Binance answers an unknown pair with -1121, so a pair missing from a 200 reply proves nothing.
        missing_is_unknown=False,
    )


def _to_quote(raw: dict[str, Any], *, now: datetime | None = None) -> Quote:
    """Map one FULL ``ticker/24hr`` object to a ``Quote`` (prices are JSON strings, times epoch ms)."""
    symbol = raw.get("symbol")
    if not isinstance(symbol, str):
        raise InvalidRecordError("symbol missing")
    currency = _quote_asset(symbol)
    return Quote(
        symbol=symbol,
        price=to_decimal(raw.get("lastPrice"), field="lastPrice", positive=True),
        timestamp=from_epoch(raw.get("closeTime"), unit="ms", now=now),
        source="binance",
        change_24h_pct=optional_decimal(raw.get("priceChangePercent"), field="priceChangePercent", allow_negative=True),
        volume_24h=optional_decimal(raw.get("quoteVolume"), field="quoteVolume"),
        currency=currency,
    )


def _to_bar(row: Any, *, symbol: str, interval: str, now: datetime | None = None) -> Bar:
    """Map one kline array ``[openTime, open, high, low, close, volume, closeTime, ...]`` to a ``Bar``."""
    if not isinstance(row, list) or len(row) < 6:
        raise InvalidRecordError("kline row is not an array of at least 6 fields")
    opened = from_epoch(row[0], unit="ms", now=now)
    return check_bar(
        Bar(
            symbol=symbol,
            interval=interval,
            timestamp=floor_to_interval(opened, interval),
            open=to_decimal(row[1], field="open"),
            high=to_decimal(row[2], field="high"),
            low=to_decimal(row[3], field="low"),
            close=to_decimal(row[4], field="close"),
            volume=to_decimal(row[5], field="volume"),
            source="binance",
        )
    )


def _quote_asset(pair: str) -> str:
    for asset in QUOTE_ASSETS:
        if pair.endswith(asset) and len(pair) > len(asset):
            return asset
    raise InvalidRecordError(f"cannot tell the quote asset of pair {pair}")
