"""The circuit breaker: opens on consecutive transient failures, one half-open probe, closes on success."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from backend.providers.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    MemoryBreakerStore,
    RedisBreakerStore,
    build_breaker,
)
from backend.providers.errors import (
    CircuitOpenError,
    InvalidKeyError,
    MalformedReplyError,
    TransientProviderError,
    UnknownSymbolError,
)
from backend.providers.ratelimit import RateLimitedError

REDIS_URL = os.environ.get("REDIS_URL", "")


class Clock:
    """A hand-driven wall clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Provider:
    """A provider call that fails with the queued errors, then answers "ok"; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors: list[Exception] = []

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock()


# The Redis store runs the same tests when REDIS_URL is set (as in CI).
@pytest.fixture(params=["memory", "redis"] if REDIS_URL else ["memory"])
def make_breaker(request, clock: Clock) -> Iterator[Callable[..., CircuitBreaker]]:
    """Breakers on the memory store, and on Redis when REDIS_URL is set (a fresh key prefix per test)."""
    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        store = RedisBreakerStore(REDIS_URL, prefix=prefix)
    else:
        store = MemoryBreakerStore(clock)

    def make(**options: object) -> CircuitBreaker:
        return CircuitBreaker(store, clock=clock, **{"failure_threshold": 3, "reset_seconds": 30.0, **options})

    yield make
    if request.param == "redis":
        for name in ("binance", "yahoo"):
            store.record_success(name)


def fail(breaker: CircuitBreaker, provider: Provider, times: int, error: type[Exception] = TransientProviderError):
    for _ in range(times):
        provider.errors.append(error("boom"))
        with pytest.raises(error):
            breaker.call("binance", provider)


def test_it_opens_after_n_consecutive_transient_failures_and_stops_calling(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 3)
    assert breaker.state("binance").state == OPEN

    with pytest.raises(CircuitOpenError) as caught:
        breaker.call("binance", provider)

    assert provider.calls == 3  # the 4th call never reached the provider
    assert caught.value.provider == "binance"
    assert 0 < caught.value.retry_after <= 30


def test_fewer_than_n_failures_keep_it_closed(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 2)
    assert breaker.call("binance", provider) == "ok"
    assert breaker.state("binance").state == CLOSED


def test_a_success_resets_the_count_of_consecutive_failures(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 2)
    breaker.call("binance", provider)
    fail(breaker, provider, 2)
    assert breaker.state("binance").state == CLOSED
    assert breaker.state("binance").failures == 2


@pytest.mark.parametrize("error", [UnknownSymbolError, InvalidKeyError, MalformedReplyError])
def test_permanent_errors_never_open_it(make_breaker, error: type[Exception]) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 5, error)
    assert breaker.state("binance").state == CLOSED
    assert provider.calls == 5


def test_a_permanent_answer_between_transient_failures_breaks_the_streak(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 2)
    fail(breaker, provider, 1, UnknownSymbolError)
    fail(breaker, provider, 2)
    assert breaker.state("binance").state == CLOSED


def test_our_own_rate_limit_refusals_do_not_count(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 5, RateLimitedError)
    assert breaker.state("binance").state == CLOSED


def test_circuits_are_per_provider(make_breaker) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 3)
    assert breaker.call("yahoo", Provider()) == "ok"


def test_after_the_cool_down_a_single_probe_goes_through_and_a_success_closes_it(make_breaker, clock) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 3)
    clock.advance(30.1)
    assert breaker.state("binance").state == HALF_OPEN

    assert breaker.call("binance", provider) == "ok"

    assert breaker.state("binance").state == CLOSED
    assert breaker.state("binance").failures == 0
    assert breaker.call("binance", provider) == "ok"


def test_while_the_probe_runs_other_callers_are_refused(make_breaker, clock) -> None:
    breaker = make_breaker()
    fail(breaker, Provider(), 3)
    clock.advance(31)
    other = Provider()
    outcome: list[str] = []

    def probe() -> str:
        with pytest.raises(CircuitOpenError, match="probing"):
            breaker.call("binance", other)
        outcome.append("refused")
        return "ok"

    assert breaker.call("binance", probe) == "ok"
    assert outcome == ["refused"]
    assert other.calls == 0


def test_a_failed_probe_opens_it_for_another_cool_down(make_breaker, clock) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 3)
    clock.advance(31)
    fail(breaker, provider, 1)
    assert breaker.state("binance").state == OPEN

    clock.advance(29)
    with pytest.raises(CircuitOpenError):
        breaker.call("binance", provider)
    assert provider.calls == 4

    clock.advance(2)
    assert breaker.call("binance", provider) == "ok"


def test_an_inconclusive_probe_frees_the_slot_for_the_next_caller(make_breaker, clock) -> None:
    breaker, provider = make_breaker(), Provider()
    fail(breaker, provider, 3)
    clock.advance(31)
    provider.errors.append(RateLimitedError("no slot"))
    with pytest.raises(RateLimitedError):
        breaker.call("binance", provider)
    assert breaker.call("binance", provider) == "ok"


def test_a_probe_that_never_reports_back_is_replaced_after_the_probe_timeout() -> None:
    clock = Clock()
    store = MemoryBreakerStore(clock)
    breaker = CircuitBreaker(store, failure_threshold=1, reset_seconds=10, probe_timeout=20, clock=clock)
    fail(breaker, Provider(), 1)
    clock.advance(11)
    assert store.claim_probe("binance", 20)  # a prober that then dies (worker killed)
    with pytest.raises(CircuitOpenError):
        breaker.call("binance", Provider())
    clock.advance(21)
    assert breaker.call("binance", Provider()) == "ok"


def test_a_bug_in_the_call_is_not_counted_against_the_provider(make_breaker) -> None:
    breaker, provider = make_breaker(failure_threshold=1), Provider()
    provider.errors.append(KeyError("bug"))
    with pytest.raises(KeyError):
        breaker.call("binance", provider)
    assert breaker.state("binance").state == CLOSED


def test_an_unreachable_redis_lets_calls_through() -> None:
    breaker = build_breaker("redis://127.0.0.1:1/0", failure_threshold=1)
    provider = Provider()
    fail(breaker, provider, 2)
    assert breaker.call("binance", provider) == "ok"
    assert provider.calls == 3


@pytest.mark.redis  # sharing breaker state between processes
def test_two_breakers_on_one_redis_share_the_circuit(clock) -> None:
    prefix = f"test-breaker-{uuid.uuid4().hex[:8]}"
    first = CircuitBreaker(RedisBreakerStore(REDIS_URL, prefix=prefix), failure_threshold=2, clock=clock)
    second = CircuitBreaker(RedisBreakerStore(REDIS_URL, prefix=prefix), failure_threshold=2, clock=clock)
    fail(first, Provider(), 1)
    fail(second, Provider(), 1)
    provider = Provider()
    with pytest.raises(CircuitOpenError):
        first.call("binance", provider)
    assert provider.calls == 0
    clock.advance(61)
    assert second.call("binance", provider) == "ok"
    assert first.state("binance").state == CLOSED


def test_it_refuses_a_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_seconds=0)
