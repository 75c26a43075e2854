"""The provider error tree: transient faults are worth a retry, permanent ones are not.

Tasks retry ``TransientProviderError`` only (``autoretry_for``); every other
``ProviderError`` fails fast into a dead letter.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every fault a provider call can raise."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class TransientProviderError(ProviderError):
    """Timeouts, connection errors, HTTP 429/5xx and throttle bodies: retrying later can help.

    ``retry_after`` is the wait in seconds the provider asked for, when it said.
    """

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Unknown symbol, invalid key, malformed reply: the same call will fail again."""


class UnknownSymbolError(PermanentProviderError):
    """The provider does not know the symbol."""


class InvalidKeyError(PermanentProviderError):
    """The provider refused our credentials."""


class MalformedReplyError(PermanentProviderError):
    """The reply did not parse or failed validation as a whole."""


class CircuitOpenError(TransientProviderError):
    """The provider's circuit breaker is open; the call was not attempted."""


class AllProvidersFailedError(TransientProviderError):
    """Every provider in a chain failed for this call."""
