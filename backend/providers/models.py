"""Vendor-neutral records that every provider returns.

Providers map their wire formats onto these; nothing above ``backend.providers``
ever sees a vendor's field names or a raw dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest price of one symbol as a provider reported it."""

    symbol: str
    price: Decimal
    timestamp: datetime
    source: str
    change_24h_pct: Decimal | None = None
    volume_24h: Decimal | None = None
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``timestamp`` is the bar's open, UTC, floored to ``interval``."""

    symbol: str
    interval: str
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class Article:
    """One news article; ``url`` is its natural key."""

    url: str
    title: str
    published_at: datetime
    source: str
    summary: str = ""
    publisher: str = ""
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A symbol or record a provider could not serve, with the reason why."""

    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class QuoteBatch:
    """The outcome of one batched quote call: what was served and what was refused."""

    quotes: tuple[Quote, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    bars: tuple[Bar, ...] = field(default=())
