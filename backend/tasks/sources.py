"""Which provider serves which data, built lazily on first use inside the worker process.

Nothing here runs at import: a client is built the first time a task asks for one,
after the worker has forked, and settings are read at that moment.
"""

from __future__ import annotations

import threading
from typing import Protocol

from django.conf import settings

from backend.providers.models import Bar, QuoteBatch
from backend.providers.simulated import SimulatedClient


class QuoteSource(Protocol):
    """Anything that prices a batch of our symbols and serves bars."""

    name: str

    def fetch_quotes(self, symbols: list[str]) -> QuoteBatch:
        """Quotes for ``symbols``; refused symbols are reported in the batch."""
        ...

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """The last ``limit`` bars of ``symbol``, oldest first."""
        ...


_lock = threading.Lock()
_sources: dict[str, QuoteSource] = {}


def quote_source(asset_class: str) -> QuoteSource:
    """The quote source for an asset class under the configured MARKET_DATA_MODE."""
    mode = settings.MARKET_DATA_MODE
    key = f"{mode}:{asset_class}"
    with _lock:
        if key not in _sources:
            _sources[key] = _build(mode, asset_class)
        return _sources[key]


def _build(mode: str, asset_class: str) -> QuoteSource:
    if mode == "simulated":
        return SimulatedClient()
    raise NotImplementedError(f"MARKET_DATA_MODE={mode} has no quote source for {asset_class} yet")


def reset_sources() -> None:
    """Forget built sources (tests, or after settings change)."""
    with _lock:
        _sources.clear()
