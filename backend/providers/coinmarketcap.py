"""CoinMarketCap: latest quotes for a batch of CMC symbols (``quotes/latest?symbol=BTC,ETH``).

Identifiers are CMC symbols (``BTC``, ``ETH``, ``1INCH``); ``Quote.symbol`` is the symbol passed in and
the caller maps it back to its asset. The key goes in the ``X-CMC_PRO_API_KEY`` header only.

Every body carries ``status.error_code``; it is mapped even on HTTP 200:
1001/1002 (bad/missing key) and 1003-1007 (key not usable for this call) -> ``InvalidKeyError``;
the allowance codes are ``ProviderThrottledError``, which pauses CoinMarketCap for every worker:
1008 (per-minute) and 1011 (per-IP) for a minute (or the ``Retry-After`` sent), 1009 (daily
credits) until the next UTC midnight, 1010 (monthly credits) until the first of next month.
A 400 naming the symbol ("Invalid value for symbol") is ``UnknownSymbolError``: the base class
bisects the batch to find the bad symbols.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
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
from backend.providers.http import join_url, request_json, strip_control
from backend.providers.models import Quote, QuoteBatch, Rejected
from backend.providers.validation import (
    CRYPTO_SYMBOL,
    Clock,
    InvalidRecordError,
    map_batch,
    optional_decimal,
    seconds_to_utc_midnight,
    to_decimal,
    to_utc,
    utc_now,
)

logger = logging.getLogger(__name__)

QUOTES_PATH = "/v1/cryptocurrency/quotes/latest"
_KEY_CODES = frozenset({1001, 1002, 1003, 1004, 1005, 1006, 1007})
_MINUTE_CODES = frozenset({1008, 1011})
_DAILY_CODE = 1009
_MONTHLY_CODE = 1010
_MINUTE_RETRY = 60.0


class CoinMarketCapClient(ProviderClient):
    """CoinMarketCap Pro API client for batched latest quotes by symbol."""

    name = "coinmarketcap"
    # 1 credit per 100 coins returned (historical docs), so 100 symbols per call costs one credit.
    batch_limit = 100

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        convert: str = "USD",
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(http, base_url=base_url, api_key=api_key, clock=clock)
        if not convert.isalpha() or not convert.isupper():
            raise ValueError("convert must be an upper-case currency code such as 'USD'")
        self._convert = convert

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        """Fetch latest quotes for CMC symbols, ``batch_limit`` per request; unknown ones are ``Rejected``."""
        # Reference: https://coinmarketcap.com/api/documentation/v1/#operation/getV1CryptocurrencyQuotesLatest
        return self._quotes_in_batches(symbols, pattern=CRYPTO_SYMBOL, fetch=self._fetch_batch)

    def _fetch_batch(self, batch: Sequence[str]) -> tuple[list[Quote], list[Rejected]]:
        """One ``quotes/latest`` request; a 400 for one bad symbol fails it whole and the base class bisects."""
        # skip_invalid asks the server to drop unknown symbols instead of failing the request.
        params = {"symbol": ",".join(batch), "convert": self._convert, "skip_invalid": "true"}
        with self._gate():
            raw = request_json(
                self._http,
                "GET",
                join_url(self._base_url, QUOTES_PATH),
                provider=self.name,
                params=params,
                headers=self._headers(),
                error_hook=self._error_hook,
            )
            # HTTP 200 can still carry a non-zero error_code: no usable data then.
            error = _status_error(200, raw, "quotes/latest")
            if error is not None:
                raise error
        logger.debug("coinmarketcap credits used: %s", _credit_count(raw))
        return _map_quotes(raw, batch, convert=self._convert, now=self._clock())

    def _headers(self) -> dict[str, str]:
        return {"X-CMC_PRO_API_KEY": self._api_key} if self._api_key else {}

    def _error_hook(self, status: int, body: Any, url: str) -> ProviderError | None:
        return _status_error(status, body, url, now=self._clock())


def _status_error(status: int, body: Any, url: str, *, now: datetime | None = None) -> ProviderError | None:
    """Map ``status.error_code`` (and the HTTP status) onto the error tree; ``None`` when all is well."""
    info = body.get("status") if isinstance(body, dict) else None
    code = info.get("error_code") if isinstance(info, dict) else None
    message = strip_control(info.get("error_message") or "", 160) if isinstance(info, dict) else ""
    if not code and 200 <= status < 300:
        return None
    text = f"coinmarketcap: error_code {code} (HTTP {status}) at {url}: {message}"
    provider = "coinmarketcap"
    if code in _KEY_CODES:
        return InvalidKeyError(text, provider=provider)
    if code in _MINUTE_CODES:
        return ProviderThrottledError(text, provider=provider, retry_after=_MINUTE_RETRY)
    if code == _DAILY_CODE:
        return ProviderThrottledError(text, provider=provider, retry_after=seconds_to_utc_midnight(now))
    if code == _MONTHLY_CODE:
        return ProviderThrottledError(text, provider=provider, retry_after=_seconds_to_next_month(now))
    if code == 400 or status == 400:
        if "symbol" in message.lower():
            return UnknownSymbolError(text, provider=provider)
        return PermanentProviderError(text, provider=provider)
    return None  # let request_json's status table decide (5xx/429 transient, 401/403 key, ...)


def _seconds_to_next_month(now: datetime | None) -> float:
    now = now or utc_now()
    first = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return (first - now).total_seconds()


def _credit_count(raw: Any) -> Any:
    status = raw.get("status") if isinstance(raw, dict) else None
    return status.get("credit_count") if isinstance(status, dict) else None


def _map_quotes(
    raw: Any, batch: Sequence[str], *, convert: str, now: datetime | None
) -> tuple[list[Quote], list[Rejected]]:
    """Turn a ``quotes/latest`` body into quotes; symbols absent from ``data`` are rejected."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        raise MalformedReplyError("coinmarketcap: reply has no data object", provider="coinmarketcap")

    def find(symbol: str) -> dict[str, Any] | None:
        entry = data.get(symbol, data.get(symbol.upper()))
        if isinstance(entry, list):
            # v2 shape: every coin sharing the symbol; the best-ranked one is the one people mean.
            ranked = [e for e in entry if isinstance(e, dict)]
            entry = min(ranked, key=_rank) if ranked else None
        return entry if isinstance(entry, dict) else None

    return map_batch(
        batch,
        find,
        lambda symbol, entry: _to_quote(entry, symbol=symbol, convert=convert, now=now),
        provider="coinmarketcap",
        missing="unknown symbol (absent from data)",
    )


def _rank(entry: dict[str, Any]) -> int:
    """``cmc_rank`` as a sort key; a missing or odd rank (null, NaN) sorts last instead of failing."""
    rank = entry.get("cmc_rank")
    return rank if isinstance(rank, int) and not isinstance(rank, bool) else 10**9


def _to_quote(raw: dict[str, Any], *, symbol: str, convert: str = "USD", now: datetime | None = None) -> Quote:
    """Map one ``data[SYMBOL]`` object using its ``quote[convert]`` block."""
    block = raw.get("quote", {}).get(convert) if isinstance(raw.get("quote"), dict) else None
    if not isinstance(block, dict):
        raise InvalidRecordError(f"no {convert} quote block")
    updated = block.get("last_updated") or raw.get("last_updated")
    if not isinstance(updated, str):
        raise InvalidRecordError("last_updated missing")
    return Quote(
        symbol=symbol,
        price=to_decimal(block.get("price"), field="price", positive=True),
        timestamp=to_utc(updated, now=now),
        source="coinmarketcap",
        change_24h_pct=optional_decimal(
            block.get("percent_change_24h"), field="percent_change_24h", allow_negative=True
        ),
        volume_24h=optional_decimal(block.get("volume_24h"), field="volume_24h"),
        currency=convert,
    )
