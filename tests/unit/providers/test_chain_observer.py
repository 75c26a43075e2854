"""A chain tells its observer about every provider call: who, what, how it ended, how long it took."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.providers.breaker import CircuitBreaker
from backend.providers.errors import AllProvidersFailedError, TransientProviderError
from backend.providers.models import Failed, Quote, QuoteBatch
from backend.providers.orchestrator import Instrument, ProviderChain

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Client:
    def __init__(self, name: str, answer: QuoteBatch | Exception) -> None:
        self.name = name
        self.answer = answer

    def fetch_quotes(self, symbols):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_observer_sees_errors_partial_answers_and_successes() -> None:
    calls: list[tuple[str, str, str, float]] = []
    down = Client("a", TransientProviderError("a: HTTP 503", provider="a"))
    partial = Client(
        "b",
        QuoteBatch(quotes=(Quote("X", Decimal(1), NOW, "b"),), failed=(Failed("Y", "b: timeout"),)),
    )
    chain = ProviderChain([down, partial], observer=lambda *call: calls.append(call))

    chain.fetch_quotes([Instrument("X", {"a": "X", "b": "X"}), Instrument("Y", {"a": "Y", "b": "Y"})])

    assert [(p, op, outcome) for p, op, outcome, _ in calls] == [
        ("a", "fetch_quotes", "TransientProviderError"),
        ("b", "fetch_quotes", "partial"),
    ]
    assert all(seconds >= 0 for *_, seconds in calls)


def test_an_open_circuit_is_reported_as_such() -> None:
    calls: list[tuple[str, str, str, float]] = []
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=60)
    chain = ProviderChain(
        [Client("a", TransientProviderError("a: down", provider="a"))],
        breaker=breaker,
        observer=lambda *call: calls.append(call),
    )
    for _ in range(2):
        with pytest.raises(AllProvidersFailedError):
            chain.fetch_quotes([Instrument("X", {"a": "X"})])
    assert [outcome for _, _, outcome, _ in calls] == ["TransientProviderError", "CircuitOpenError"]
