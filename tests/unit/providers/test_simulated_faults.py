"""The simulated provider fails on purpose at the rate its caller asks for, as a transient fault."""

from __future__ import annotations

import itertools

import pytest

from backend.providers.errors import TransientProviderError
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.simulated import SimulatedClient


def test_without_a_fault_rate_every_call_answers() -> None:
    client = SimulatedClient(fault_rate=lambda: 0.0, draw=lambda: 0.0)
    assert len(client.fetch_quotes(["AAPL"]).quotes) == 1
    assert len(client.fetch_bars("AAPL", limit=3)) == 3
    assert client.fetch_articles("AAPL")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.fetch_quotes(["AAPL"]),
        lambda c: c.fetch_bars("AAPL", limit=3),
        lambda c: c.fetch_articles("AAPL"),
    ],
    ids=["quotes", "bars", "news"],
)
def test_at_a_rate_of_one_every_call_fails_transiently_and_says_why(call) -> None:
    client = SimulatedClient(fault_rate=lambda: 1.0)
    with pytest.raises(TransientProviderError, match="fault rehearsal, 100% of calls fail") as caught:
        call(client)
    assert caught.value.provider == "simulated"


def test_the_share_of_failed_calls_follows_the_rate() -> None:
    draws = itertools.cycle([0.1, 0.3, 0.6, 0.9])  # two of four below 0.5
    client = SimulatedClient(fault_rate=lambda: 0.5, draw=lambda: next(draws))
    outcomes = []
    for _ in range(8):
        try:
            client.fetch_quotes(["BTC"])
            outcomes.append("ok")
        except TransientProviderError:
            outcomes.append("failed")
    assert outcomes.count("failed") == 4


def test_the_rate_is_read_on_every_call_so_a_rehearsal_ends_without_a_restart() -> None:
    rate = [1.0]
    client = SimulatedClient(fault_rate=lambda: rate[0])
    with pytest.raises(TransientProviderError):
        client.fetch_quotes(["AAPL"])
    rate[0] = 0.0
    assert client.fetch_quotes(["AAPL"]).quotes


def test_a_chain_of_the_failing_simulated_provider_fails_as_a_whole_worth_a_retry() -> None:
    chain = ProviderChain([SimulatedClient(fault_rate=lambda: 1.0)])
    with pytest.raises(TransientProviderError) as caught:
        chain.fetch_quotes([Instrument("AAPL", {"simulated": "AAPL"})])
    assert [failure.provider for failure in caught.value.failures] == ["simulated"]
