"""CoinGecko: batched spot prices (``simple/price``) and price history (``coins/{id}/market_chart``).

Identifiers are CoinGecko coin ids (``bitcoin``, ``usd-coin``), never tickers, because CoinGecko
symbols are not unique. ``fetch_quotes`` returns ``Quote.symbol`` equal to the id passed in; the
caller maps ids back to its assets (a curated per-asset id, not a runtime lookup).

The key travels in a header (``x-cg-demo-api-key`` or, with ``pro=True``, ``x-cg-pro-api-key``),
never in the query string. Keyless use works but shares a per-IP limit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from backend.providers.base import ProviderClient
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    ProviderError,
    ProviderThrottledError,
    UnknownSymbolError,
)
from backend.providers.http import join_url, path_segment, strip_control
from backend.providers.models import Bar, Quote, QuoteBatch, Rejected
from backend.providers.validation import (
    COIN_ID,
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

# market_chart picks its own granularity (1 day -> 5 min, 2-90 days -> hourly, > 90 days -> daily);
# we bucket the points ourselves, so only intervals at or above that granularity make sense.
SUPPORTED_INTERVALS = ("1h", "1d")
MAX_HOURLY_DAYS = 90
MAX_DAILY_BARS = 3650
# CoinGecko's own error codes for a bad, missing or wrong-tier key.
_KEY_ERROR_CODES = frozenset({10002, 10010, 10011})


class CoinGeckoClient(ProviderClient):
    """CoinGecko REST client for spot prices and price history, keyed by coin id."""

    name = "coingecko"
    # Not documented; ~250 ids keeps the URL short (providers.md).
    batch_limit = 250

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        pro: bool = False,
        vs_currency: str = "usd",
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(http, base_url=base_url, api_key=api_key, clock=clock)
        self._key_header = "x-cg-pro-api-key" if pro else "x-cg-demo-api-key"
        if not vs_currency.isalpha() or not vs_currency.islower():
            raise ValueError("vs_currency must be a lower-case currency code such as 'usd'")
        self._vs = vs_currency

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Fetch prices for CoinGecko ids, ``batch_limit`` per request; unknown ids become ``Rejected``."""
        # Reference: https://docs.coingecko.com/reference/simple-price
        return self._quotes_in_batches(symbols, pattern=COIN_ID, fetch=self._fetch_batch)

    def _fetch_batch(self, batch: Sequence[str]) -> tuple[list[Quote], list[Rejected]]:
        """One ``simple/price`` request; CoinGecko leaves unknown ids out of the reply."""
        params = {
            "ids": ",".join(batch),
            "vs_currencies": self._vs,
            "include_24hr_vol": "true",
            "include_24hr_change": "true",
            "include_last_updated_at": "true",
        }
        raw = self._get_json(
            join_url(self._base_url, "/simple/price"),
            params=params,
            headers=self._headers(),
            error_hook=self._error_hook,
        )
        return _map_prices(raw, batch, vs=self._vs, now=self._clock())

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Build up to ``limit`` bars for one coin id by bucketing ``market_chart`` prices (UTC buckets).

        CoinGecko gives prices, not OHLC: open/high/low/close come from the points inside each bucket
        and volume is CoinGecko's rolling 24 h volume at the bucket's last point (approximate).
        """
        # Reference: https://docs.coingecko.com/reference/coins-id-market-chart
        split = split_symbols([symbol], pattern=COIN_ID)
        if split[1]:
            raise UnknownSymbolError(split[1][0].reason, provider=self.name)
        check_interval(interval, SUPPORTED_INTERVALS)
        if interval == "1h":
            check_limit(limit, maximum=MAX_HOURLY_DAYS * 24)
            params = {"vs_currency": self._vs, "days": str(max(2, -(-limit // 24)))}
        else:
            check_limit(limit, maximum=MAX_DAILY_BARS)
            params = {"vs_currency": self._vs, "days": str(limit), "interval": "daily"}
        raw = self._get_json(
            join_url(self._base_url, f"/coins/{path_segment(symbol)}/market_chart"),
            params=params,
            headers=self._headers(),
            error_hook=self._error_hook,
        )
        return keep_last_per_timestamp(_to_bars(raw, symbol=symbol, interval=interval, now=self._clock()), limit)

    def _headers(self) -> dict[str, str]:
        return {self._key_header: self._api_key} if self._api_key else {}

    def _error_hook(self, status: int, body: Any, url: str) -> ProviderError | None:
        if status == 429:
            # CoinGecko asks for at least a minute when it sends no retry-after (its header, if any, wins).
            return ProviderThrottledError(
                f"coingecko: HTTP 429 (rate limited) at {url}", provider=self.name, retry_after=60.0
            )
        code = _error_code(body)
        if code in _KEY_ERROR_CODES:
            return InvalidKeyError(f"coingecko: key refused (error_code {code}) at {url}", provider=self.name)
        if status == 404 and isinstance(body, dict) and isinstance(body.get("error"), str):
            detail = strip_control(body["error"], 80)
            return UnknownSymbolError(f"coingecko: {detail} ({url})", provider=self.name)
        return None


def _error_code(body: Any) -> Any:
    """CoinGecko nests ``status.error_code`` at the top level or under ``error``."""
    if not isinstance(body, dict):
        return None
    for holder in (body, body.get("error")):
        if isinstance(holder, dict) and isinstance(holder.get("status"), dict):
            return holder["status"].get("error_code")
    return None


def _map_prices(raw: Any, batch: Sequence[str], *, vs: str, now: datetime | None) -> tuple[list[Quote], list[Rejected]]:
    """Turn a ``simple/price`` object into quotes for the requested ids; absent or bad ids are rejected."""
    if not isinstance(raw, dict):
        raise MalformedReplyError("coingecko: simple/price reply is not an object", provider="coingecko")
    return map_batch(
        batch,
        lambda coin_id: raw.get(coin_id) if isinstance(raw.get(coin_id), dict) and raw.get(coin_id) else None,
        lambda coin_id, entry: _to_quote(coin_id, entry, vs=vs, now=now),
        provider="coingecko",
        missing="unknown id (absent from the reply)",
    )


def _to_quote(coin_id: str, raw: dict[str, Any], *, vs: str = "usd", now: datetime | None = None) -> Quote:
    """Map one ``simple/price`` entry (``{"usd": .., "usd_24h_change": .., "last_updated_at": ..}``)."""
    return Quote(
        symbol=coin_id,
        price=to_decimal(raw.get(vs), field=vs, positive=True),
        timestamp=from_epoch(raw.get("last_updated_at"), unit="s", now=now),
        source="coingecko",
        change_24h_pct=optional_decimal(raw.get(f"{vs}_24h_change"), field="24h_change", allow_negative=True),
        volume_24h=optional_decimal(raw.get(f"{vs}_24h_vol"), field="24h_vol"),
        currency=vs.upper(),
    )


def _to_bars(raw: Any, *, symbol: str, interval: str, now: datetime | None) -> list[Bar]:
    """Bucket ``[[ms, price], ...]`` points into OHLC bars; bad points are dropped with a log line."""
    if not isinstance(raw, dict) or not isinstance(raw.get("prices"), list):
        raise MalformedReplyError("coingecko: market_chart reply has no prices list", provider="coingecko")
    volumes: dict[int, Decimal] = {}
    for point in raw.get("total_volumes") or []:
        if isinstance(point, list) and len(point) == 2 and isinstance(point[0], int):
            try:
                volumes[point[0]] = to_decimal(point[1], field="volume")
            except InvalidRecordError:
                continue  # a bad volume only costs that bucket its volume, not its prices
    buckets: dict[datetime, list[tuple[int, Decimal]]] = {}
    dropped = 0
    for point in raw["prices"]:
        try:
            if not isinstance(point, list) or len(point) != 2:
                raise InvalidRecordError("price point is not [ms, price]")
            when = from_epoch(point[0], unit="ms", now=now)
            price = to_decimal(point[1], field="price", positive=True)
        except InvalidRecordError:
            dropped += 1
            continue
        buckets.setdefault(floor_to_interval(when, interval), []).append((point[0], price))
    if dropped:
        logger.warning("coingecko dropped %s bad price points for %s", dropped, symbol)
    bars: list[Bar] = []
    for start, points in buckets.items():
        points.sort()
        prices = [p for _, p in points]
        last_ms = points[-1][0]
        try:
            bars.append(
                check_bar(
                    Bar(
                        symbol=symbol,
                        interval=interval,
                        timestamp=start,
                        open=prices[0],
                        high=max(prices),
                        low=min(prices),
                        close=prices[-1],
                        volume=volumes.get(last_ms, Decimal(0)),
                        source="coingecko",
                    )
                )
            )
        except InvalidRecordError as exc:
            logger.warning("coingecko dropped a bar for %s: %s", symbol, strip_control(exc))
    return bars
