"""What every provider client shares: an injected httpx client, a base URL, an optional key, a clock."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar

import httpx

from backend.providers.http import check_base_url
from backend.providers.models import Quote, QuoteBatch, Rejected
from backend.providers.validation import Clock, chunks, split_symbols, utc_now

BatchFetch = Callable[[Sequence[str]], tuple[list[Quote], list[Rejected]]]


class ProviderClient:
    """Base of the vendor clients; subclasses name themselves and their per-request batch limit.

    The key is held, never shown: ``repr`` says only whether one is set.
    """

    name: ClassVar[str]
    batch_limit: ClassVar[int]

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._http = http
        self._base_url = check_base_url(base_url)
        self._api_key = api_key
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r}, key={'set' if self._api_key else 'none'})"

    def _quotes_in_batches(self, symbols: Sequence[str], *, pattern: re.Pattern[str], fetch: BatchFetch) -> QuoteBatch:
        """Refuse malformed identifiers, then call ``fetch`` once per ``batch_limit`` of the rest."""
        valid, rejected = split_symbols(symbols, pattern=pattern)
        quotes: list[Quote] = []
        for batch in chunks(valid, self.batch_limit):
            got, refused = fetch(batch)
            quotes.extend(got)
            rejected.extend(refused)
        return QuoteBatch(quotes=tuple(quotes), rejected=tuple(rejected))
