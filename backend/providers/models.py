"""Vendor-neutral records that every provider returns.

Providers map their wire formats onto these; nothing above ``backend.providers``
ever sees a vendor's field names or a raw dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from backend.providers.errors import ProviderFailure

__all__ = ["Article", "Bar", "Failed", "ProviderFailure", "Quote", "QuoteBatch", "Rejected"]


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
    """A PERMANENT refusal of one symbol or record, with the reason why.

    ``unknown`` is True when the provider (for a chain: every provider that was asked) said it does
    not know the symbol; a bad record or a provider refusing the whole call leaves it False.
    """

    symbol: str
    reason: str
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """A symbol nobody served because of TRANSIENT faults (429, 5xx, timeout, truncated body, pause).

    ``retry_after``: seconds until the first of its providers may be asked again; ``None`` when one
    failed without naming a wait (it may be asked again after the retry backoff). ``asked`` is False
    when no provider was sent a request for it: every one that could serve it was skipped, paused or
    with its circuit open (``ProviderSkippedError``). True unless known otherwise: a retry that did
    ask someone must count as an attempt.
    """

    symbol: str
    reason: str
    retry_after: float | None = None
    asked: bool = True


@dataclass(frozen=True, slots=True)
class QuoteBatch:
    """The outcome of one batched quote call; every requested symbol is in exactly one of
    ``quotes``, ``rejected`` or ``failed`` (``bars`` are extras some providers send along).

    ``failures``: when some symbols ended ``failed``, every provider that failed during the call and why
    (a chain's verdict; a dead letter of those symbols names them).
    """

    quotes: tuple[Quote, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    bars: tuple[Bar, ...] = field(default=())
    failed: tuple[Failed, ...] = ()
    failures: tuple[ProviderFailure, ...] = ()
