"""The shared rate limiter: a moving window per provider, waits in small steps, gives up early."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from backend.providers.errors import TransientProviderError
from backend.providers.http import build_client
from backend.providers.ratelimit import (
    RateLimitedError,
    RateLimiter,
    RateLimiterUnavailableError,
    guard_client,
    planned_requests,
    window_max,
)
from tests.unit.providers import test_import_is_light as import_probe

NEW_MODULES = ["backend.providers.ratelimit", "backend.providers.breaker", "backend.providers.orchestrator"]


def take(limiter: RateLimiter, n: int, provider: str = "binance", timeout: float = 5.0) -> list[float]:
    """Acquire ``n`` slots and return the wall-clock time of each."""
    times = []
    for _ in range(n):
        limiter.acquire(provider, timeout=timeout)
        times.append(time.time())
    return times


def test_it_lets_the_first_requests_through_at_once() -> None:
    limiter = RateLimiter(None, {"binance": "5/second"})
    started = time.monotonic()
    take(limiter, 5)
    assert time.monotonic() - started < 0.2


def test_it_waits_for_a_slot_instead_of_exceeding_the_rate() -> None:
    limiter = RateLimiter(None, {"binance": "5/second"})
    times = take(limiter, 12)
    # 12 slots at 5 per moving second: the 6th waits for the 1st to age out, the 11th for the 6th.
    assert times[-1] - times[0] >= 2.0 - 0.05
    assert window_max(times, 1.0) <= 5


def test_it_gives_up_early_with_retry_after_when_the_wait_exceeds_the_timeout() -> None:
    sleeps: list[float] = []
    limiter = RateLimiter(None, {"binance": "2/second"}, sleep=sleeps.append)
    take(limiter, 2)
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire("binance", timeout=0.1)
    assert isinstance(caught.value, TransientProviderError)
    assert caught.value.provider == "binance"
    assert 0.5 < caught.value.retry_after <= 1.0
    assert sleeps == []  # it knew the slot was too far away: no sleeping in vain


def test_it_sleeps_in_small_steps_while_waiting() -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    limiter = RateLimiter(None, {"binance": "1/second"}, sleep=sleep, step=0.05)
    take(limiter, 2)
    assert len(sleeps) >= 10
    assert max(sleeps) <= 0.05


def test_providers_have_separate_quotas() -> None:
    limiter = RateLimiter(None, {"binance": "2/second", "coingecko": "2/second"})
    take(limiter, 2, "binance")
    take(limiter, 2, "coingecko", timeout=0)
    with pytest.raises(RateLimitedError):
        limiter.acquire("binance", timeout=0)


def test_a_provider_without_a_rate_is_not_limited() -> None:
    limiter = RateLimiter(None, {"binance": "1/second", "yahoo": ""})
    started = time.monotonic()
    take(limiter, 50, "coingecko", timeout=0)
    take(limiter, 50, "yahoo", timeout=0)
    assert time.monotonic() - started < 0.5
    assert not limiter.limited("yahoo")


def test_every_limit_of_a_provider_applies() -> None:
    limiter = RateLimiter(None, {"alphavantage": "10/second;3/minute"})
    take(limiter, 3, "alphavantage", timeout=0)
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire("alphavantage", timeout=1.0)
    assert caught.value.retry_after > 50  # the per-minute window, not the per-second one


def test_reset_forgets_the_recorded_requests() -> None:
    limiter = RateLimiter(None, {"binance": "1/minute"})
    take(limiter, 1, timeout=0)
    limiter.reset("binance")
    take(limiter, 1, timeout=0)


def test_a_junk_rate_is_refused_naming_the_provider() -> None:
    with pytest.raises(ValueError, match="binance"):
        RateLimiter(None, {"binance": "lots per second"})


def test_threads_of_one_process_share_the_quota() -> None:
    limiter = RateLimiter(None, {"binance": "5/second"})
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for stamp in take(limiter, 6):
            with lock:
                times.append(stamp)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(times) == 12
    assert window_max(times, 1.0) <= 5


def test_an_unreachable_redis_stops_requests_with_a_transient_error() -> None:
    limiter = RateLimiter("redis://127.0.0.1:1/0", {"binance": "5/second"})
    assert limiter.shared
    with pytest.raises(RateLimiterUnavailableError) as caught:
        limiter.acquire("binance", timeout=1)
    assert isinstance(caught.value, TransientProviderError)


def test_a_guarded_client_takes_one_slot_per_request() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(200, json={}))
    limiter = RateLimiter(None, {"binance": "2/second"})
    http = guard_client(build_client(transport=transport), limiter, "binance", timeout=0)
    http.get("https://api.test/a")
    http.get("https://api.test/b")
    with pytest.raises(RateLimitedError):
        http.get("https://api.test/c")
    assert [r.url.path for r in seen] == ["/a", "/b"]  # the refused request never left


class CountingLimiter(RateLimiter):
    """A limiter that records the cost of every round trip to its storage."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.takes: list[int] = []

    def acquire(self, provider: str, *, timeout: float, cost: int = 1) -> None:
        self.takes.append(cost)
        super().acquire(provider, timeout=timeout, cost=cost)


def guarded(limiter: RateLimiter, clock=time.monotonic) -> httpx.Client:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    return guard_client(build_client(transport=transport), limiter, "binance", timeout=0, clock=clock)


def test_a_planned_call_under_a_generous_quota_takes_its_slots_in_one_round_trip() -> None:
    limiter = CountingLimiter(None, {"binance": "1000/second"})
    http = guarded(limiter)
    with planned_requests("binance", 25):
        for n in range(25):
            http.get(f"https://api.test/{n}")
    assert limiter.takes == [25]
    http.get("https://api.test/after")  # outside a plan: one slot, as before
    assert limiter.takes == [25, 1]


def test_slots_taken_at_once_never_exceed_the_burst_share_of_the_quota() -> None:
    limiter = CountingLimiter(None, {"binance": "100/second"})  # 5 % of 100 = 5 at once
    http = guarded(limiter)
    with planned_requests("binance", 12):
        for n in range(12):
            http.get(f"https://api.test/{n}")
    assert limiter.takes == [5, 5, 2]


def test_a_tight_quota_still_takes_one_slot_per_request_inside_a_plan() -> None:
    limiter = CountingLimiter(None, {"binance": "10/second"})
    http = guarded(limiter)
    with planned_requests("binance", 3):
        for n in range(3):
            http.get(f"https://api.test/{n}")
    assert limiter.takes == [1, 1, 1]


def test_slots_taken_ahead_expire_after_the_burst_share_of_the_window() -> None:
    now = [0.0]
    limiter = CountingLimiter(None, {"binance": "1000/second"})  # spendable for 50 ms
    http = guarded(limiter, clock=lambda: now[0])
    with planned_requests("binance", 4):
        http.get("https://api.test/0")
        now[0] = 0.2  # the three slots taken ahead are too old to spend now
        http.get("https://api.test/1")
    assert limiter.takes == [4, 3]


def test_a_planned_call_cannot_exceed_the_quota() -> None:
    limiter = CountingLimiter(None, {"binance": "40/second"})  # 2 at once
    http = guarded(limiter)
    sent = 0
    with planned_requests("binance", 60), pytest.raises(RateLimitedError):
        for n in range(60):
            http.get(f"https://api.test/{n}")
            sent += 1
    assert sent == 40


def test_guarding_a_provider_without_a_rate_adds_no_hook() -> None:
    http = build_client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    guard_client(http, RateLimiter(None, {}), "yahoo", timeout=0)
    assert http.event_hooks["request"] == []


@pytest.mark.parametrize(
    ("stamps", "window", "expected"),
    [
        ([], 1.0, 0),
        ([0.0, 0.5, 0.99], 1.0, 3),
        ([0.0, 0.5, 1.0], 1.0, 2),  # half-open: 1.0 is outside [0.0, 1.0)
        ([0.0, 0.1, 0.2, 1.15, 1.2, 1.25, 1.3], 1.0, 4),
        ([3.0, 1.0, 2.0, 1.5], 1.0, 2),  # unsorted input
    ],
)
def test_window_max_counts_the_busiest_span(stamps: list[float], window: float, expected: int) -> None:
    assert window_max(stamps, window) == expected


def test_importing_the_limiter_breaker_and_orchestrator_opens_no_socket_and_reads_no_setting(monkeypatch) -> None:
    # The probe of test_import_is_light (any connect fails the run), on the modules added with the orchestrator.
    monkeypatch.setattr(import_probe, "MODULES", NEW_MODULES)
    result = import_probe.run_probe({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert result["django"] is False
    assert result["celery"] is False
    assert not any("REDIS" in name or "RATE" in name for name in result["reads"])
