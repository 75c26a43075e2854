"""Unknown symbols inside a batch are found by bisection at the httpx seam (respx), and a transient
fault while isolating fails only the symbols still unresolved: served sub-batches are kept."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import httpx
import pytest
import respx

from backend.providers.binance import BinanceClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.errors import TransientProviderError
from backend.providers.http import build_client
from backend.providers.models import QuoteBatch
from backend.providers.pauses import PauseBoard
from tests.unit.providers.fakes import FIXED_NOW, SECRET, fixture_json

BINANCE = "https://binance.test"
CMC = "https://cmc.test"
TICKER = fixture_json("binance", "ticker_24hr_ok.json")[0]
CMC_ROW = fixture_json("coinmarketcap", "quotes_latest_ok.json")["data"]["ETH"]
CMC_STATUS = fixture_json("coinmarketcap", "quotes_latest_ok.json")["status"]

Fault = Callable[[int, list[str]], httpx.Response | None]


def binance_api(bad: set[str], fault: Fault | None = None) -> Callable[[httpx.Request], httpx.Response]:
    """Binance's ticker/24hr: one unknown pair fails the whole request with 400 -1121."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        symbols = json.loads(request.url.params["symbols"])
        if fault is not None and (faulty := fault(calls["n"], symbols)) is not None:
            return faulty
        if bad & set(symbols):
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        return httpx.Response(200, json=[{**TICKER, "symbol": s} for s in symbols])

    return handler


def cmc_api(bad: set[str]) -> Callable[[httpx.Request], httpx.Response]:
    """A CoinMarketCap that ignores skip_invalid and answers 400 "Invalid value for symbol"."""

    def handler(request: httpx.Request) -> httpx.Response:
        symbols = request.url.params["symbol"].split(",")
        wrong = sorted(bad & set(symbols))
        if wrong:
            message = f'Invalid value for "symbol": "{",".join(wrong)}"'
            return httpx.Response(400, json={"status": {**CMC_STATUS, "error_code": 400, "error_message": message}})
        return httpx.Response(200, json={"status": CMC_STATUS, "data": {s: {**CMC_ROW, "symbol": s} for s in symbols}})

    return handler


def pairs(n: int) -> list[str]:
    return [f"C{i}USDT" for i in range(n)]


def fetch_binance(symbols: list[str], handler, *, pauses: PauseBoard | None = None) -> tuple[QuoteBatch, int]:
    with respx.mock(base_url=BINANCE, assert_all_called=False) as router:
        route = router.get("/api/v3/ticker/24hr").mock(side_effect=handler)
        client = BinanceClient(build_client(), base_url=BINANCE, clock=lambda: FIXED_NOW, pauses=pauses)
        batch = client.fetch_quotes(symbols)
        return batch, route.call_count


def assert_complete(batch: QuoteBatch, symbols: list[str]) -> None:
    places = [q.symbol for q in batch.quotes] + [r.symbol for r in batch.rejected] + [f.symbol for f in batch.failed]
    assert sorted(places) == sorted(symbols)


@pytest.mark.parametrize(("n", "k"), [(20, 1), (20, 2), (20, 5), (45, 3), (100, 1), (100, 4)])
def test_k_unknown_pairs_among_n_cost_at_most_2_k_log2_limit_extra_requests(n: int, k: int) -> None:
    symbols = pairs(n)
    bad = set(symbols[3 :: max(n // k, 1)][:k])
    batch, requests = fetch_binance(symbols, binance_api(bad))

    assert sorted(r.symbol for r in batch.rejected) == sorted(bad)
    assert all(r.unknown for r in batch.rejected)
    assert len(batch.quotes) == n - k and batch.failed == ()
    clean = math.ceil(n / BinanceClient.batch_limit)
    assert requests <= clean + 2 * k * math.ceil(math.log2(BinanceClient.batch_limit))


def test_a_clean_batch_costs_one_request_per_limit() -> None:
    _, requests = fetch_binance(pairs(45), binance_api(set()))
    assert requests == 3


def test_a_500_while_isolating_fails_only_the_unresolved_half_and_keeps_the_served_one() -> None:
    symbols = pairs(20)

    def second_request_fails(call: int, batch: list[str]) -> httpx.Response | None:
        return httpx.Response(500, text="oops") if call == 2 else None

    # call 1: the whole batch (-1121); call 2: first half -> 500; call 3: second half (clean) -> served
    batch, requests = fetch_binance(symbols, binance_api({symbols[0]}, second_request_fails))

    assert [q.symbol for q in batch.quotes] == symbols[10:]
    assert [f.symbol for f in batch.failed] == symbols[:10]
    assert batch.rejected == ()
    assert requests == 3
    assert_complete(batch, symbols)


def test_a_429_while_isolating_pauses_the_provider_and_stops_sending() -> None:
    symbols = pairs(20)
    pauses = PauseBoard()

    def throttled_after_first(call: int, batch: list[str]) -> httpx.Response | None:
        if call == 3:
            return httpx.Response(429, json={"code": -1003, "msg": "Too much weight"}, headers={"Retry-After": "30"})
        return None

    batch, requests = fetch_binance(symbols, binance_api({symbols[0]}, throttled_after_first), pauses=pauses)

    # call 1 whole batch, 2 first half (-1121 again), 3 its first half -> 429: nothing more is sent
    assert requests == 3
    assert [q.symbol for q in batch.quotes] == []
    assert {f.retry_after for f in batch.failed} == {30.0}
    assert_complete(batch, symbols)
    assert 29 < pauses.remaining("binance") <= 30


def test_a_whole_call_that_got_no_answer_raises_so_the_breaker_counts_it() -> None:
    with pytest.raises(TransientProviderError):
        fetch_binance(pairs(3), lambda request: httpx.Response(503, text="down"))


def test_a_transient_fault_in_one_of_several_batches_keeps_the_other_batches() -> None:
    symbols = pairs(45)

    def second_batch_times_out(call: int, batch: list[str]) -> httpx.Response | None:
        if call == 2:
            raise httpx.ReadTimeout("slow")
        return None

    batch, requests = fetch_binance(symbols, binance_api(set(), second_batch_times_out))
    assert requests == 3
    assert [f.symbol for f in batch.failed] == symbols[20:40]
    assert len(batch.quotes) == 25
    assert_complete(batch, symbols)


def test_coinmarketcap_bisects_a_400_invalid_value_for_symbol() -> None:
    symbols = [f"C{i}" for i in range(100)]
    bad = {"C7", "C61"}
    with respx.mock(base_url=CMC) as router:
        route = router.get("/v1/cryptocurrency/quotes/latest").mock(side_effect=cmc_api(bad))
        client = CoinMarketCapClient(build_client(), base_url=CMC, api_key=SECRET, clock=lambda: FIXED_NOW)
        batch = client.fetch_quotes(symbols)
    assert sorted(r.symbol for r in batch.rejected) == sorted(bad)
    assert all(r.unknown for r in batch.rejected)
    assert len(batch.quotes) == 98
    assert route.call_count <= 1 + 2 * len(bad) * math.ceil(math.log2(100))


def test_a_provider_that_fails_its_first_request_gets_no_more_requests_in_that_call() -> None:
    with respx.mock(base_url=BINANCE) as router:
        route = router.get("/api/v3/ticker/24hr").mock(return_value=httpx.Response(500, text="down"))
        client = BinanceClient(build_client(), base_url=BINANCE, clock=lambda: FIXED_NOW)
        with pytest.raises(TransientProviderError):
            client.fetch_quotes(pairs(100))
    assert route.call_count == 1
