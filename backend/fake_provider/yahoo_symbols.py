"""Yahoo tickers in the fake: what kind of instrument a ticker names and where it trades."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from backend.fake_provider.market import FIAT_USD, LONDON, NEW_YORK, Profile, fx_profile, pair_profile, profile


def yahoo_kind(symbol: str) -> str:
    """What a Yahoo ticker names: INDEX (^GSPC), CURRENCY (EURUSD=X), FUTURE, CRYPTOCURRENCY (BTC-USD) or EQUITY."""
    if symbol.startswith("^"):
        return "INDEX"
    if symbol.endswith("=X"):
        return "CURRENCY"
    if symbol.endswith("=F"):
        return "FUTURE"
    if "-" in symbol and symbol.rsplit("-", 1)[1] in FIAT_USD:
        return "CRYPTOCURRENCY"
    return "EQUITY"


def yahoo_asset(symbol: str) -> str:
    """The base asset behind a Yahoo ticker (BTC for BTC-USD, EUR for EURUSD=X), for unknown-symbol checks."""
    kind = yahoo_kind(symbol)
    if kind == "CRYPTOCURRENCY":
        return symbol.rsplit("-", 1)[0]
    if kind == "CURRENCY":
        return symbol[:3]
    return symbol


@lru_cache(maxsize=65536)
def yahoo_profile(symbol: str) -> Profile:
    """The generated price profile of a Yahoo ticker, shared with the same asset on other providers."""
    kind = yahoo_kind(symbol)
    if kind == "CRYPTOCURRENCY":
        base, quote = symbol.rsplit("-", 1)
        return profile(base) if quote == "USD" else pair_profile(base, quote)
    if kind == "CURRENCY":
        pair = symbol[:-2]
        base, quote = (pair[:3], pair[3:]) if len(pair) == 6 else ("USD", pair[:3])
        if base in FIAT_USD and quote in FIAT_USD:
            return fx_profile(base, quote)
    return profile(symbol)


def yahoo_exchange(symbol: str, now: float) -> dict[str, Any]:
    """Exchange, time zone and currency fields Yahoo reports for a ticker at ``now``."""
    kind = yahoo_kind(symbol)
    if kind == "CRYPTOCURRENCY":
        exchange, full, tz = "CCC", "CCC", UTC
    elif kind == "CURRENCY":
        exchange, full, tz = "CCY", "CCY", LONDON
    elif kind == "INDEX":
        exchange, full, tz = "SNP", "SNP", NEW_YORK
    else:
        exchange, full, tz = "NMS", "NasdaqGS", NEW_YORK
    tz_short, offset = _zone_at(tz, now)
    currency = symbol.rsplit("-", 1)[1] if kind == "CRYPTOCURRENCY" else "USD"
    if kind == "CURRENCY" and len(symbol) == 8:
        currency = symbol[3:6]
    return {
        "kind": kind,
        "exchange": exchange,
        "full": full,
        "tz_name": "UTC" if tz is UTC else str(tz),
        "tz_short": tz_short,
        "gmtoffset": offset,
        "currency": currency,
        "continuous": kind in ("CRYPTOCURRENCY", "CURRENCY"),
    }


@lru_cache(maxsize=16)
def _zone_at(tz: Any, now: float) -> tuple[str, int]:
    """(abbreviation, UTC offset in seconds) of ``tz`` at ``now``: once per zone and request, not per row."""
    local = datetime.fromtimestamp(now, tz)
    offset = local.utcoffset()
    return local.tzname() or "UTC", int(offset.total_seconds()) if offset is not None else 0
