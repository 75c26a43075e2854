"""Provider pauses: one "come back at T" stops every caller of that provider, through Redis when shared."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest
import redis
import respx

from backend.providers.alphavantage import AlphaVantageClient
from backend.providers.breaker import CircuitBreaker, build_breaker
from backend.providers.errors import ProviderPausedError, ProviderThrottledError, TransientProviderError
from backend.providers.http import build_client
from backend.providers.models import Quote, QuoteBatch
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.pauses import MemoryPauseStore, PauseBoard, RedisPauseStore, build_pause_board
from tests.unit.providers.fakes import FIXED_NOW, SECRET, fixture_json

IBM = Instrument("IBM", {"yahoo": "IBM", "alphavantage": "IBM"})


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Backup:
    """A second provider that always serves."""

    name = "yahoo"

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        return QuoteBatch(quotes=tuple(Quote(s, 1, FIXED_NOW, self.name) for s in symbols))


class Throttled:
    name = "alphavantage"

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.calls = 0

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        self.calls += 1
        raise ProviderThrottledError("alphavantage: throttled (Note)", provider=self.name, retry_after=self.wait)


@pytest.fixture
def prefix(redis_url: str):
    name = f"test-pauses-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)


def test_a_pause_refuses_calls_until_it_ends_then_lets_them_through() -> None:
    clock = Clock()
    board = PauseBoard(clock=clock)
    board.pause("binance", 30, reason="429")
    with pytest.raises(ProviderPausedError) as caught:
        board.check("binance")
    assert isinstance(caught.value, TransientProviderError)
    assert caught.value.retry_after == 30
    board.check("coingecko")  # other providers are not affected
    clock.now += 31
    board.check("binance")


def test_a_pause_only_grows() -> None:
    clock = Clock()
    board = PauseBoard(MemoryPauseStore(), clock=clock)
    board.pause("binance", 300)
    board.pause("binance", 10)
    assert board.remaining("binance") == 300


def test_the_read_function_lists_providers_paused_now_with_their_end() -> None:
    clock = Clock()
    board = PauseBoard(clock=clock)
    board.pause("alphavantage", 60)
    board.pause("binance", 1)
    clock.now += 2
    assert board.paused() == {"alphavantage": datetime.fromtimestamp(1_000_060.0, tz=UTC)}


def test_a_pause_in_redis_is_seen_by_every_board_on_the_same_prefix(redis_url: str, prefix: str) -> None:
    first = build_pause_board(redis_url, prefix=prefix)
    second = PauseBoard(RedisPauseStore(redis_url, prefix=prefix))
    first.pause("binance", 120, reason="418 ban")
    assert 119 < second.remaining("binance") <= 120
    assert set(second.paused()) == {"binance"}
    first.pause("binance", 5)
    assert second.remaining("binance") > 100  # never shortened
    second.clear("binance")
    assert first.remaining("binance") == 0


def test_an_unreachable_redis_fails_open() -> None:
    board = PauseBoard(RedisPauseStore("redis://127.0.0.1:1/0"))
    board.pause("binance", 60)
    board.check("binance")  # no exception: the protection degrades, the data keeps flowing
    assert board.paused() == {}


def test_a_throttled_provider_is_paused_for_every_chain_and_skipped_without_a_call() -> None:
    breaker = CircuitBreaker()
    throttled = Throttled(wait=600)
    first = ProviderChain([throttled, Backup()], breaker=breaker)
    second = ProviderChain([throttled, Backup()], breaker=breaker)  # another task, same worker state

    assert first.fetch_quotes([IBM]).quotes[0].source == "yahoo"
    assert second.fetch_quotes([IBM]).quotes[0].source == "yahoo"

    assert throttled.calls == 1
    assert breaker.pauses.remaining("alphavantage") > 590


def test_a_paused_provider_with_no_one_to_fail_over_to_raises_all_failed_with_the_pause() -> None:
    breaker = CircuitBreaker()
    breaker.pauses.pause("alphavantage", 42)
    from backend.providers.errors import AllProvidersFailedError

    with pytest.raises(AllProvidersFailedError) as caught:
        ProviderChain([Throttled(wait=1)], breaker=breaker).fetch_quotes([IBM])
    assert 41 < caught.value.retry_after <= 42
    assert [f.error for f in caught.value.failures] == ["ProviderPausedError"]


def test_the_breaker_does_not_count_a_pause_as_a_provider_failure() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    breaker.pauses.pause("alphavantage", 60)
    chain = ProviderChain([Throttled(wait=1), Backup()], breaker=breaker)
    for _ in range(3):
        chain.fetch_quotes([IBM])
    assert breaker.state("alphavantage").failures == 0


def test_alpha_vantage_daily_cap_pauses_it_until_utc_midnight_shared_through_redis(redis_url: str, prefix: str) -> None:
    breaker = build_breaker(redis_url, prefix=prefix)
    av_url = "https://av.test"
    with respx.mock(base_url=av_url) as router:
        route = router.get("/query").mock(
            return_value=httpx.Response(200, json=fixture_json("alphavantage", "information.json"))
        )
        client = AlphaVantageClient(build_client(), base_url=av_url, api_key=SECRET, clock=lambda: FIXED_NOW)
        chain = ProviderChain([client, Backup()], breaker=breaker)
        chain.fetch_quotes([IBM, Instrument("MSFT", {"alphavantage": "MSFT", "yahoo": "MSFT"})])
        chain.fetch_quotes([IBM])
    assert route.call_count == 1  # the rest of the call and the next call sent nothing
    other_worker = build_breaker(redis_url, prefix=prefix).pauses
    until = other_worker.paused()["alphavantage"]
    # The client's clock is FIXED_NOW (noon): twelve hours from the wall clock that recorded it.
    assert 12 * 3600 - 60 < (until - datetime.now(UTC)).total_seconds() <= 12 * 3600
