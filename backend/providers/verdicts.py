"""A chain call's verdict: what each provider said about each symbol, and what to raise when nothing was served.

Kept apart from the chain's failover loop (``orchestrator``) so the rules of the contract read in one
place: ``failed`` when any provider failed TRANSIENTLY for a symbol nobody served, ``rejected`` with
``unknown=True`` only when every provider asked said "unknown", and the verdict exceptions carry one
``ProviderFailure`` per provider that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from backend.providers.errors import (
    AllProvidersFailedError,
    PermanentProviderError,
    ProviderError,
    ProviderFailure,
    TransientProviderError,
)
from backend.providers.http import scrub_text, strip_control
from backend.providers.models import Failed, Rejected


@dataclass
class CallFailures:
    """What went wrong during one chain call, for the final verdict."""

    transient: list[TransientProviderError] = field(default_factory=list)
    permanent: list[ProviderError] = field(default_factory=list)
    records: list[ProviderFailure] = field(default_factory=list)

    def add(self, exc: ProviderError, provider: str = "") -> None:
        """A provider failed the whole call."""
        if isinstance(exc, TransientProviderError):
            self.transient.append(exc)
        else:
            self.permanent.append(exc)
        self.records.append(failure_of(exc, provider))

    def add_partial(self, provider: str, failed: Sequence[Failed]) -> None:
        """A provider answered but could not serve some symbols because of transient faults."""
        self.records.append(
            ProviderFailure(provider, "Failed", strip_control(f"{len(failed)} symbols failed: {failed[0].reason}", 200))
        )

    def __bool__(self) -> bool:
        return bool(self.records)

    def raise_for(self, what: str, *, waits: Iterable[float | None] | None = None, unasked: Iterable[str] = ()) -> None:
        """Raise the verdict for a call that served nothing (only called when something failed).

        ``waits``: when each unserved item could be asked again (``None``: after the retry backoff);
        by default one per provider that failed transiently. The verdict's ``retry_after`` is the
        earliest of them (``earliest_wait``). ``unasked``: the items no provider was sent a request for.
        """
        summary = "; ".join(f"{f.provider}: {f.error}: {f.message}" for f in self.records)
        failures = tuple(self.records)
        waits = list(waits) if waits is not None else [e.retry_after for e in self.transient]
        if self.transient or waits or any(f.error == "Failed" for f in failures):
            raise AllProvidersFailedError(
                f"every provider failed for {what}: {summary}",
                retry_after=earliest_wait(waits),
                failures=failures,
                unasked=frozenset(unasked),
            )
        if len(self.permanent) == 1:
            self.permanent[0].failures = failures
            raise self.permanent[0]
        raise PermanentProviderError(f"every provider refused {what}: {summary}", failures=failures)


@dataclass
class SymbolOutcome:
    """What the providers asked so far said about one of our symbols."""

    reasons: list[str] = field(default_factory=list)
    # Providers tried for it, and of those the ones skipped without a request (paused, circuit open).
    asked: int = 0
    skipped: int = 0
    unknown: int = 0
    transient: bool = False
    # One per transient failure: the wait that provider named, None when it named none.
    waits: list[float | None] = field(default_factory=list)

    def refused(self, reason: str, *, unknown: bool) -> None:
        """A provider refused the symbol permanently (``unknown``: it said it does not know it)."""
        self.reasons.append(reason)
        self.unknown += unknown

    def failed(self, reason: str, retry_after: float | None, *, skipped: bool = False) -> None:
        """A provider failed the symbol transiently (``skipped``: it was not sent a request at all)."""
        self.reasons.append(reason)
        self.transient = True
        self.waits.append(retry_after)
        self.skipped += skipped

    @property
    def reached(self) -> bool:
        """Whether some provider was really sent a request for the symbol."""
        return self.asked > self.skipped


def failure_of(exc: ProviderError, provider: str = "") -> ProviderFailure:
    """The safe record of one provider's failure: class name and a redacted single-line message."""
    return ProviderFailure(
        provider=getattr(exc, "provider", "") or provider,
        error=type(exc).__name__,
        message=strip_control(scrub_text(str(exc)), 200),
    )


def earliest_wait(waits: Iterable[float | None]) -> float | None:
    """The earliest moment, in seconds from now, at which any of ``waits`` allows asking again.

    ``None`` in ``waits`` is a provider that failed without naming a wait (an HTTP 500, a timeout): it
    may be asked again after the ordinary retry backoff, so the answer is ``None`` too. A retry is due
    when the FIRST provider can take it; a provider still paused then is skipped without a request
    (its pause is on the shared board), never waited for. Taking the longest wait instead deferred a
    batch for ten minutes behind Alpha Vantage's spent daily quota after one HTTP 500 from Yahoo.
    """
    values = list(waits)
    if not values or any(wait is None for wait in values):
        return None
    return min(wait for wait in values if wait is not None)


def failed_of(symbol: str, outcome: SymbolOutcome) -> Failed:
    """The ``Failed`` record of a symbol nobody served after a transient fault (its earliest wait)."""
    return Failed(symbol, "; ".join(outcome.reasons), earliest_wait(outcome.waits), asked=outcome.reached)


def rejected_of(symbol: str, outcome: SymbolOutcome, providers: Sequence[str]) -> Rejected:
    """The ``Rejected`` record of a symbol every provider asked refused permanently."""
    if not outcome.asked:
        return Rejected(symbol, no_id_reason(providers))
    # Quarantine feeds on this: only when EVERY provider that was asked said "unknown".
    return Rejected(symbol, "; ".join(outcome.reasons), unknown=outcome.unknown == outcome.asked)


def describe(exc: ProviderError) -> str:
    """One safe line naming the provider and the error, for reasons and logs."""
    text = strip_control(exc, 160)
    provider = getattr(exc, "provider", "")
    prefix = "" if not provider or text.startswith(provider) else f"{provider}: "
    return f"{prefix}{type(exc).__name__}: {text}"


def no_id_reason(providers: Sequence[str]) -> str:
    """The reason for a symbol no provider of the chain has an identifier for."""
    return f"no identifier for any provider of the chain ({', '.join(providers) or 'none configured'})"
