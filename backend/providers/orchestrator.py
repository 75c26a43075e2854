"""Failover across an ordered chain of providers, each behind its circuit breaker.

A chain serves one asset class and data kind, e.g. crypto quotes: Binance -> CoinGecko ->
CoinMarketCap. It takes our instruments (our symbol plus each provider's identifier for it),
asks the first provider for everything it has an identifier for, hands what that provider could
not serve to the next one, and so on. Every quote comes back under OUR symbol with ``source`` =
the provider that served it.

What moves work to the next provider:

* a transient fault of the whole call (timeout, 5xx, 429, throttle body), an open circuit, a
  paused provider, or our own rate limiter refusing a slot;
* a permanent fault of the whole call (bad key, malformed reply): provider A's bad key must not
  stop provider B; it is logged as a warning and named in the reasons of what stays unserved;
* a symbol the provider rejected or failed alone (unknown, invalid value, a fault while isolating
  it): only that symbol moves on.

Every instrument ends in exactly one of three places, with every provider's reason:

* ``quotes``: some provider served it;
* ``failed``: no provider served it and at least one failed for it TRANSIENTLY (worth a retry);
* ``rejected``: every provider asked refused it permanently; ``unknown=True`` when every one of
  them said it does not know the symbol (what quarantine counts).

When nothing at all was served and something failed, the call raises instead:
``AllProvidersFailedError`` (transient) if any failure was transient, else the permanent verdict
naming every provider's complaint. Both carry ``failures``, one ``ProviderFailure`` per provider that
failed. The transient verdict's ``retry_after`` (and each ``Failed`` symbol's) is the earliest moment
ANY provider can be asked again, ``None`` (after the retry backoff) when one failed without naming a
wait: a provider paused for hours is skipped at the retry, not waited for.

A provider that answers "come back at T" (``ProviderThrottledError``) is paused for every worker
on the breaker's ``PauseBoard``; a paused provider is skipped without a request until then. A symbol
for which every provider was skipped (paused, circuit open: ``ProviderSkippedError``) ends ``failed``
with ``asked=False`` (the raised verdict names such symbols in ``unasked``), so a task can tell a
retry that asked nobody from one a provider refused.

Rate limiting is not done here but on each HTTP request (``ratelimit.guard_client``), because one
provider call can be several requests; a refusal surfaces here as a transient error like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from backend.common.logcontext import log_fields
from backend.providers.breaker import CircuitBreaker
from backend.providers.errors import (
    ProviderError,
    ProviderSkippedError,
    ProviderThrottledError,
    TransientProviderError,
    UnknownSymbolError,
)
from backend.providers.http import strip_control
from backend.providers.models import Article, Bar, Quote, QuoteBatch
from backend.providers.pauses import PauseBoard
from backend.providers.verdicts import CallFailures, SymbolOutcome, describe, failed_of, no_id_reason, rejected_of

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Called after every provider call: (provider, operation, outcome, seconds). Outcome is ``ok``,
# ``partial`` (a quote batch with transiently failed symbols) or the ProviderError class name.
# The task layer passes one that writes metrics; providers themselves know no metrics library.
CallObserver = Callable[[str, str, str, float], None]


@dataclass(frozen=True, slots=True)
class Instrument:
    """One of our assets as the chain sees it: our symbol and each provider's identifier for it.

    ``ids`` maps provider name -> identifier (``{"binance": "BTCUSDT", "coingecko": "bitcoin"}``);
    a provider without an entry is skipped for this instrument.
    """

    symbol: str
    ids: Mapping[str, str] = field(default_factory=dict)

    def id_for(self, provider: str) -> str | None:
        """The identifier ``provider`` knows this instrument by, if any."""
        return self.ids.get(provider) or None


class QuoteClient(Protocol):
    name: str

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch: ...


class BarClient(Protocol):
    name: str

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]: ...


class NewsClient(Protocol):
    name: str

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 3) -> list[Article]: ...


class ProviderChain:
    """An ordered list of provider clients for one asset class and data kind, with failover.

    ``clients`` need a ``name`` and the method the chain is used for (``fetch_quotes``,
    ``fetch_bars`` or ``fetch_articles``). Every call to a client goes through ``breaker``
    when one is given. ``pauses`` (by default the breaker's board) skips a paused provider
    without calling it and records the pause a provider asks for; clients that can check it per
    HTTP request (``use_pauses``) are handed the same board.
    """

    def __init__(
        self,
        clients: Sequence[Any],
        *,
        breaker: CircuitBreaker | None = None,
        pauses: PauseBoard | None = None,
        name: str = "",
        observer: CallObserver | None = None,
    ) -> None:
        names = [c.name for c in clients]
        if len(set(names)) != len(names):
            raise ValueError(f"a provider appears twice in the chain: {names}")
        self._clients = tuple(clients)
        self._breaker = breaker
        self._observer = observer
        self._pauses = pauses if pauses is not None else (breaker.pauses if breaker is not None else None)
        if self._pauses is not None:
            for client in self._clients:
                use_pauses = getattr(client, "use_pauses", None)
                if callable(use_pauses):
                    use_pauses(self._pauses)
        self.name = name or ">".join(names) or "empty"

    def __repr__(self) -> str:
        return f"ProviderChain({self.name!r})"

    @property
    def providers(self) -> tuple[str, ...]:
        """Provider names in the order they are tried."""
        return tuple(c.name for c in self._clients)

    # --- quotes ----------------------------------------------------------------------------------

    def fetch_quotes(self, instruments: Sequence[Instrument]) -> QuoteBatch:
        """Quotes for ``instruments`` under our symbols; each provider gets what the earlier ones missed.

        Every instrument ends in exactly one of ``quotes`` / ``rejected`` / ``failed`` (see the module
        docstring); when nothing was served and a fault was transient it raises ``AllProvidersFailedError``.
        """
        pending = list({i.symbol: i for i in instruments}.values())
        quotes: list[Quote] = []
        bars: list[Bar] = []
        outcomes: dict[str, SymbolOutcome] = {i.symbol: SymbolOutcome() for i in pending}
        failures = CallFailures()
        for client in self._clients:
            if not pending:
                break
            by_id = _ids_for(client.name, pending)
            if not by_id:
                continue
            for symbols in by_id.values():
                for symbol in symbols:
                    outcomes[symbol].asked += 1
            try:
                self._check_pause(client.name)
                batch: QuoteBatch = self._call(client.name, client.fetch_quotes, list(by_id))
            except ProviderError as exc:
                self._note_throttle(client.name, exc)
                failures.add(exc, client.name)
                self._log_failover(client.name, exc, len(by_id))
                retry_after = exc.retry_after if isinstance(exc, TransientProviderError) else None
                # Skipped (paused, circuit open): the provider saw no request for these symbols.
                skipped = isinstance(exc, ProviderSkippedError)
                for symbols in by_id.values():
                    for symbol in symbols:
                        if isinstance(exc, TransientProviderError):
                            outcomes[symbol].failed(describe(exc), retry_after, skipped=skipped)
                        else:
                            outcomes[symbol].refused(describe(exc), unknown=False)
                continue
            if batch.failed:
                failures.add_partial(client.name, batch.failed)
            served = self._collect(client.name, batch, by_id, quotes, bars, outcomes)
            pending = [i for i in pending if i.symbol not in served]
            if pending:
                logger.info(
                    "%s served %s of %s ids; %s symbols left for the next provider",
                    client.name,
                    len(served),
                    len(by_id),
                    len(pending),
                )
        failed = [failed_of(i.symbol, outcomes[i.symbol]) for i in pending if outcomes[i.symbol].transient]
        if pending and not quotes and failures:
            failures.raise_for(
                f"{len(pending)} quotes",
                waits=[f.retry_after for f in failed],
                unasked=[f.symbol for f in failed if not f.asked],
            )
        rejected = [
            rejected_of(i.symbol, outcomes[i.symbol], self.providers)
            for i in pending
            if not outcomes[i.symbol].transient
        ]
        return QuoteBatch(
            quotes=tuple(quotes),
            rejected=tuple(rejected),
            bars=tuple(bars),
            failed=tuple(failed),
            failures=tuple(failures.records) if failed else (),
        )

    @staticmethod
    def _collect(
        provider: str,
        batch: QuoteBatch,
        by_id: Mapping[str, list[str]],
        quotes: list[Quote],
        bars: list[Bar],
        outcomes: dict[str, SymbolOutcome],
    ) -> set[str]:
        """Move one provider's answer onto our symbols; returns the symbols it served."""
        served: set[str] = set()
        for quote in batch.quotes:
            symbols = by_id.get(quote.symbol)
            if symbols is None:
                logger.warning(
                    "%s returned a quote for %s, which was not asked for; ignored",
                    provider,
                    strip_control(quote.symbol, 40),
                )
                continue
            for symbol in symbols:
                if symbol not in served:
                    # Most stocks' provider id is their symbol: no copy needed then.
                    quotes.append(quote if quote.symbol == symbol else replace(quote, symbol=symbol))
                    served.add(symbol)
        for bar in batch.bars:
            for symbol in by_id.get(bar.symbol, ()):
                bars.append(replace(bar, symbol=symbol))
        answered: set[str] = set()
        for refused in batch.rejected:
            for symbol in by_id.get(refused.symbol, ()):
                if symbol not in served and symbol not in answered:
                    outcomes[symbol].refused(refused.reason, unknown=refused.unknown)
                    answered.add(symbol)
        for fault in batch.failed:
            for symbol in by_id.get(fault.symbol, ()):
                if symbol not in served and symbol not in answered:
                    outcomes[symbol].failed(fault.reason, fault.retry_after)
                    answered.add(symbol)
        for provider_id, symbols in by_id.items():
            for symbol in symbols:
                if symbol not in served and symbol not in answered:
                    # The provider said nothing about it: treat it as a refusal that is not "unknown".
                    outcomes[symbol].refused(f"{provider}: {provider_id} missing from the reply", unknown=False)
        return served

    # --- bars ------------------------------------------------------------------------------------

    def fetch_bars(self, instrument: Instrument, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        """Bars for one instrument from the first provider that has them, under our symbol."""
        failures = CallFailures()
        empty_from: str | None = None
        for client in self._clients:
            provider_id = instrument.id_for(client.name)
            if provider_id is None:
                continue
            try:
                self._check_pause(client.name)
                bars: list[Bar] = self._call(
                    client.name, client.fetch_bars, provider_id, interval=interval, limit=limit
                )
            except ProviderError as exc:
                self._note_throttle(client.name, exc)
                failures.add(exc, client.name)
                self._log_failover(client.name, exc, 1)
                continue
            if bars:
                return [replace(bar, symbol=instrument.symbol) for bar in bars]
            empty_from = empty_from or client.name
            logger.info("%s has no %s bars for %s; trying the next provider", client.name, interval, instrument.symbol)
        if failures:
            if empty_from is None:
                failures.raise_for(f"{interval} bars of {instrument.symbol}")
            logger.warning(
                "no %s bars for %s: %s answered with none, the others failed", interval, instrument.symbol, empty_from
            )
            return []
        if empty_from is None:
            raise UnknownSymbolError(f"{instrument.symbol}: {no_id_reason(self.providers)}")
        return []

    # --- news ------------------------------------------------------------------------------------

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 3) -> list[Article]:
        """Articles for ``query`` from the first provider that answers; no provider configured -> []."""
        failures = CallFailures()
        for client in self._clients:
            try:
                self._check_pause(client.name)
                return self._call(client.name, client.fetch_articles, query, since=since, max_pages=max_pages)
            except ProviderError as exc:
                self._note_throttle(client.name, exc)
                failures.add(exc, client.name)
                self._log_failover(client.name, exc, 1)
        if failures:
            failures.raise_for("news")
        return []

    # --- plumbing --------------------------------------------------------------------------------

    def _call(self, provider: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._observer is None:
            return self._guarded(provider, fn, *args, **kwargs)
        operation = getattr(fn, "__name__", "call")
        began = time.monotonic()
        try:
            result = self._guarded(provider, fn, *args, **kwargs)
        except ProviderError as exc:
            self._observer(provider, operation, type(exc).__name__, time.monotonic() - began)
            raise
        outcome = "partial" if isinstance(result, QuoteBatch) and result.failed else "ok"
        self._observer(provider, operation, outcome, time.monotonic() - began)
        return result

    def _guarded(self, provider: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with log_fields(provider=provider):  # every line logged during the call names the provider
            if self._breaker is None:
                return fn(*args, **kwargs)
            return self._breaker.call(provider, fn, *args, **kwargs)

    def _check_pause(self, provider: str) -> None:
        if self._pauses is not None:
            self._pauses.check(provider)

    def _note_throttle(self, provider: str, exc: ProviderError) -> None:
        """A provider that asked for a wait is paused for every worker (idempotent: pauses only grow)."""
        if self._pauses is not None and isinstance(exc, ProviderThrottledError) and exc.retry_after is not None:
            self._pauses.pause(provider, exc.retry_after, reason=strip_control(exc, 120))

    def _log_failover(self, provider: str, exc: ProviderError, count: int) -> None:
        kind = "transient" if isinstance(exc, TransientProviderError) else "permanent"
        log = logger.info if isinstance(exc, TransientProviderError) else logger.warning
        log(
            "%s failed (%s %s) for %s items of chain %s; failing over: %s",
            provider,
            kind,
            type(exc).__name__,
            count,
            self.name,
            strip_control(exc, 200),
            extra={"provider": provider},
        )


def _ids_for(provider: str, instruments: Sequence[Instrument]) -> dict[str, list[str]]:
    """provider id -> our symbols (two of our assets may share one provider id)."""
    by_id: dict[str, list[str]] = {}
    for instrument in instruments:
        provider_id = instrument.id_for(provider)
        if provider_id is not None:
            by_id.setdefault(provider_id, []).append(instrument.symbol)
    return by_id
