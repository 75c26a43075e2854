"""The provider error tree: transient faults are worth a retry, permanent ones are not.

Tasks retry ``TransientProviderError`` only (``autoretry_for``); every other
``ProviderError`` fails fast into a dead letter.

A chain's verdict (``AllProvidersFailedError`` or the permanent error it raises when every provider
refused) carries ``failures``: one ``ProviderFailure`` per provider that failed, and why.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """One provider failing one chain call: its name, the error class name and a safe message.

    ``message`` is redacted (no keys) and single-line (no control characters), fit for logs,
    task results and dead letters.
    """

    provider: str
    error: str
    message: str


class ProviderError(Exception):
    """Base of every fault a provider call can raise."""

    def __init__(self, message: str, *, provider: str = "", failures: tuple[ProviderFailure, ...] = ()) -> None:
        super().__init__(message)
        self.provider = provider
        self.failures = failures


class TransientProviderError(ProviderError):
    """Timeouts, connection errors, HTTP 429/5xx and throttle bodies: retrying later can help.

    ``retry_after`` is the wait in seconds the provider asked for, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        retry_after: float | None = None,
        failures: tuple[ProviderFailure, ...] = (),
    ) -> None:
        super().__init__(message, provider=provider, failures=failures)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Unknown symbol, invalid key, malformed reply: the same call will fail again."""


class UnknownSymbolError(PermanentProviderError):
    """The provider does not know the symbol."""


class InvalidKeyError(PermanentProviderError):
    """The provider refused our credentials."""


class MalformedReplyError(PermanentProviderError):
    """The reply was complete but did not parse or failed validation as a whole."""


class TruncatedReplyError(TransientProviderError):
    """The reply was cut off (empty, or JSON that ends mid-document): a transport fault, retry it."""


class ProviderThrottledError(TransientProviderError):
    """The provider asked us to stop sending until ``retry_after`` seconds from now.

    A 429/418 with ``Retry-After``, a throttle body (Alpha Vantage ``Note``/``Information``,
    CoinMarketCap 1008/1009/1010/1011) or an exhausted daily quota. It pauses the provider for
    every worker (``backend.providers.pauses``), not only the task that saw it.
    """


class ProviderSkippedError(TransientProviderError):
    """Nothing was sent: shared state says the provider may not be asked until ``retry_after``.

    The typed signal that a call asked nobody (a pause the provider asked for, an open circuit), so a
    retry that met only these can be told apart from one a provider really refused.
    """


class ProviderPausedError(ProviderSkippedError):
    """The provider is paused (it asked for a wait earlier); nothing was sent."""


class CircuitOpenError(ProviderSkippedError):
    """The provider's circuit breaker is open; the call was not attempted."""


class AllProvidersFailedError(TransientProviderError):
    """Every provider in a chain failed for this call and at least one failure was transient.

    ``unasked``: the items no provider was sent a request for (each one that could serve them was
    skipped, ``ProviderSkippedError``); empty when every item reached some provider.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        retry_after: float | None = None,
        failures: tuple[ProviderFailure, ...] = (),
        unasked: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message, provider=provider, retry_after=retry_after, failures=failures)
        self.unasked = unasked
