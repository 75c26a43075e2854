"""One batched quote call with requests in flight at once: the first goes alone, at most the limit after it,
and every symbol still ends served, refused or failed exactly once."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import respx

from backend.providers.binance import BinanceClient
from backend.providers.errors import TransientProviderError
from backend.providers.http import build_client
from tests.unit.providers.fakes import FIXED_NOW
from tests.unit.providers.test_isolation import BINANCE, TICKER, assert_complete, binance_api, pairs


class Recorder:
    """A Binance ticker endpoint that takes ``delay`` seconds and records when each request ran."""

    def __init__(self, delay: float = 0.03, status_for=lambda n: 200) -> None:
        self.delay = delay
        self.status_for = status_for
        self.spans: list[tuple[float, float]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            number = len(self.spans) + self.in_flight + 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        began = time.monotonic()
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
            self.spans.append((began, time.monotonic()))
        status = self.status_for(number)
        if status != 200:
            return httpx.Response(status, headers={"Retry-After": "5"}, json={"code": -1003, "msg": "slow down"})
        symbols = json.loads(request.url.params["symbols"])
        return httpx.Response(200, json=[{**TICKER, "symbol": s} for s in symbols])


def fetch(symbols: list[str], handler, concurrency: int):
    with respx.mock(base_url=BINANCE, assert_all_called=False) as router:
        route = router.get("/api/v3/ticker/24hr").mock(side_effect=handler)
        client = BinanceClient(build_client(), base_url=BINANCE, clock=lambda: FIXED_NOW)
        client.send_concurrently(concurrency)
        return client.fetch_quotes(symbols), route.call_count


def test_after_the_first_request_up_to_the_limit_are_in_flight_at_once() -> None:
    recorder = Recorder()
    symbols = pairs(9 * BinanceClient.batch_limit)
    batch, calls = fetch(symbols, recorder, concurrency=4)
    assert calls == 9 and len(batch.quotes) == len(symbols) and not batch.failed
    first, *rest = sorted(recorder.spans)
    assert all(began >= first[1] for began, _ in rest)  # the first went alone
    assert recorder.most_in_flight == 4


def test_a_limit_of_one_sends_one_request_at_a_time() -> None:
    recorder = Recorder(delay=0.005)
    batch, calls = fetch(pairs(5 * BinanceClient.batch_limit), recorder, concurrency=1)
    assert calls == 5 and recorder.most_in_flight == 1 and len(batch.quotes) == 100


def test_a_provider_that_is_down_costs_one_request_whatever_the_limit() -> None:
    recorder = Recorder(delay=0.001, status_for=lambda n: 503)
    with pytest.raises(TransientProviderError):
        fetch(pairs(10 * BinanceClient.batch_limit), recorder, concurrency=4)
    assert len(recorder.spans) == 1


def test_a_throttle_mid_call_stops_new_requests_and_fails_only_what_is_unserved() -> None:
    recorder = Recorder(delay=0.01, status_for=lambda n: 429 if n == 3 else 200)
    symbols = pairs(20 * BinanceClient.batch_limit)
    batch, calls = fetch(symbols, recorder, concurrency=3)
    assert_complete(batch, symbols)
    assert batch.failed and all("429" in f.reason or "Throttled" in f.reason for f in batch.failed)
    assert calls <= 3 + 3  # what was in flight when the throttle came, no more
    assert len(batch.quotes) == (calls - 1) * BinanceClient.batch_limit


@pytest.mark.parametrize("bad_count", [1, 4])
def test_bisection_costs_the_same_requests_with_requests_in_flight_at_once(bad_count: int) -> None:
    symbols = pairs(100)
    bad = set(symbols[7 :: 100 // bad_count][:bad_count])
    one_at_a_time, sequential_calls = fetch(symbols, binance_api(bad), concurrency=1)
    at_once, concurrent_calls = fetch(symbols, binance_api(bad), concurrency=4)
    assert concurrent_calls == sequential_calls
    assert {r.symbol for r in at_once.rejected} == {r.symbol for r in one_at_a_time.rejected} == bad
    assert_complete(at_once, symbols)
