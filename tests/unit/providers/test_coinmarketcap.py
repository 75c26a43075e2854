"""CoinMarketCapClient against a MockTransport fake of /v1/cryptocurrency/quotes/latest."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    ProviderThrottledError,
    TransientProviderError,
    TruncatedReplyError,
)
from tests.unit.providers.fakes import SECRET, FakeApi, fixture_json, json_response

PATH = "/v1/cryptocurrency/quotes/latest"
OK = fixture_json("coinmarketcap", "quotes_latest_ok.json")


def quotes_latest(request: httpx.Request) -> httpx.Response:
    """Known symbols answer; with skip_invalid=true unknown ones are dropped, otherwise the call fails."""
    if request.headers.get("X-CMC_PRO_API_KEY") != SECRET:
        return json_response("coinmarketcap", "bad_key.json", 401)
    symbols = request.url.params["symbol"].split(",")
    if request.url.params.get("skip_invalid") != "true" and any(s.startswith("NOPE") for s in symbols):
        return json_response("coinmarketcap", "invalid_symbol.json", 400)
    data = {s: OK["data"].get(s) or {**OK["data"]["ETH"], "symbol": s} for s in symbols if not s.startswith("NOPE")}
    return httpx.Response(200, json={"status": OK["status"], "data": data})


@pytest.fixture
def cmc(fake: FakeApi, clock) -> CoinMarketCapClient:
    fake.route(PATH, quotes_latest)
    return CoinMarketCapClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def client_for(fake: FakeApi, clock, handler) -> CoinMarketCapClient:
    fake.route(PATH, handler)
    return CoinMarketCapClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def test_it_parses_latest_quotes_and_sends_the_key_as_a_header(cmc: CoinMarketCapClient, fake: FakeApi) -> None:
    batch = cmc.fetch_quotes(["BTC", "ETH"])
    btc, eth = batch.quotes
    assert btc.symbol == "BTC"
    assert btc.price == Decimal("96475.8812")
    assert btc.timestamp == datetime(2026, 11, 28, 11, 59, tzinfo=UTC)
    assert btc.volume_24h == Decimal("41234567890.12")
    assert eth.change_24h_pct == Decimal("-0.4402")
    assert eth.volume_24h is None
    request = fake.requests[0]
    assert request.url.params["symbol"] == "BTC,ETH"
    assert request.url.params["convert"] == "USD"
    assert SECRET not in str(request.url)


def test_it_rejects_symbols_skipped_as_invalid_and_keeps_the_rest(cmc: CoinMarketCapClient) -> None:
    batch = cmc.fetch_quotes(["BTC", "NOPEQ", "ETH"])
    assert [q.symbol for q in batch.quotes] == ["BTC", "ETH"]
    assert [r.symbol for r in batch.rejected] == ["NOPEQ"]


def test_a_batch_failed_by_one_bad_symbol_is_split_to_isolate_it(fake: FakeApi, clock) -> None:
    def strict(request: httpx.Request) -> httpx.Response:  # a server that ignores skip_invalid
        if "NOPEQ" in request.url.params["symbol"]:
            return json_response("coinmarketcap", "invalid_symbol.json", 400)
        return quotes_latest(request)

    batch = client_for(fake, clock, strict).fetch_quotes(["BTC", "NOPEQ", "ETH"])
    assert sorted(q.symbol for q in batch.quotes) == ["BTC", "ETH"]
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("NOPEQ", True)]
    assert len(fake.requests) == 4  # [BTC NOPEQ ETH] -> [BTC] clean, so [NOPEQ ETH] is split unasked


@pytest.mark.parametrize("n", [1, 100, 101, 250])
def test_it_splits_symbols_into_ceil_n_over_limit_requests(cmc: CoinMarketCapClient, fake: FakeApi, n: int) -> None:
    symbols = [f"C{i}" for i in range(n)]
    batch = cmc.fetch_quotes(symbols)
    assert len(fake.requests) == math.ceil(n / CoinMarketCapClient.batch_limit)
    assert len(batch.quotes) == n


def test_a_per_minute_429_is_transient_and_honours_retry_after(fake: FakeApi, clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response("coinmarketcap", "rate_limited.json", 429, **{"Retry-After": "42"})

    with pytest.raises(TransientProviderError) as info:
        client_for(fake, clock, handler).fetch_quotes(["BTC"])
    assert info.value.retry_after == 42.0


def test_an_exhausted_daily_allowance_retries_after_utc_midnight(fake: FakeApi, clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response("coinmarketcap", "daily_exhausted.json", 429)

    with pytest.raises(TransientProviderError) as info:
        client_for(fake, clock, handler).fetch_quotes(["BTC"])
    assert info.value.retry_after is not None and info.value.retry_after > 0


def test_an_exhausted_monthly_allowance_pauses_until_the_first_of_next_month(fake: FakeApi, clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response("coinmarketcap", "monthly_exhausted.json", 429)

    with pytest.raises(ProviderThrottledError) as info:
        client_for(fake, clock, handler).fetch_quotes(["BTC"])
    # FIXED_NOW is 2026-11-28 12:00 UTC: two and a half days to December 1st.
    assert info.value.retry_after == 2.5 * 86400


def test_a_bad_key_is_invalid_key_without_the_key_in_the_message(fake: FakeApi, clock) -> None:
    fake.route(PATH, quotes_latest)
    client = CoinMarketCapClient(fake.client(), base_url=fake.base_url, api_key="nope-" + SECRET, clock=clock)
    with pytest.raises(InvalidKeyError) as info:
        client.fetch_quotes(["BTC"])
    assert SECRET not in str(info.value)
    assert "1001" in str(info.value)


def test_a_non_zero_error_code_on_http_200_is_not_data(fake: FakeApi, clock) -> None:
    body = {"status": {"error_code": 1008, "error_message": "rate limited"}, "data": {}}
    with pytest.raises(TransientProviderError):
        client_for(fake, clock, lambda request: httpx.Response(200, json=body)).fetch_quotes(["BTC"])


def test_a_truncated_body_is_transient(fake: FakeApi, clock) -> None:
    body = b'{"status": {"error_code": 0}, "data": {"BTC": {"quo'
    with pytest.raises(TruncatedReplyError):
        client_for(fake, clock, lambda request: httpx.Response(200, content=body)).fetch_quotes(["BTC"])


@pytest.mark.parametrize("body", [b"<html>502</html>", b'{"data": -Infinity}'])
def test_broken_bodies_are_malformed(fake: FakeApi, clock, body: bytes) -> None:
    with pytest.raises(MalformedReplyError):
        client_for(fake, clock, lambda request: httpx.Response(200, content=body)).fetch_quotes(["BTC"])


def test_a_zero_price_rejects_only_that_symbol(fake: FakeApi, clock) -> None:
    data = {
        "BTC": OK["data"]["BTC"],
        "ETH": {**OK["data"]["ETH"], "quote": {"USD": {"price": 0, "last_updated": "2026-11-28T11:59:00Z"}}},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": OK["status"], "data": data})

    batch = client_for(fake, clock, handler).fetch_quotes(["BTC", "ETH"])
    assert [q.symbol for q in batch.quotes] == ["BTC"]
    assert "greater than zero" in batch.rejected[0].reason


def test_the_v2_array_shape_picks_the_best_ranked_coin(fake: FakeApi, clock) -> None:
    impostor = {
        **OK["data"]["BTC"],
        "id": 9999,
        "cmc_rank": 4000,
        "quote": {"USD": {**OK["data"]["BTC"]["quote"]["USD"], "price": 0.01}},
    }
    data = {"BTC": [impostor, OK["data"]["BTC"]]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": OK["status"], "data": data})

    batch = client_for(fake, clock, handler).fetch_quotes(["BTC"])
    assert batch.quotes[0].price == Decimal("96475.8812")
