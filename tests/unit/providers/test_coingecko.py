"""CoinGeckoClient against a MockTransport fake of /simple/price and /coins/{id}/market_chart."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.coingecko import CoinGeckoClient, _to_quote
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    ProviderThrottledError,
    TransientProviderError,
    TruncatedReplyError,
    UnknownSymbolError,
)
from tests.unit.providers.fakes import FIXED_NOW, SECRET, FakeApi, fixture_json, json_response

PRICES = fixture_json("coingecko", "simple_price_ok.json")


def simple_price(request: httpx.Request) -> httpx.Response:
    """Known ids answer; unknown ids are simply absent, as CoinGecko does."""
    ids = request.url.params["ids"].split(",")
    body = {i: PRICES.get(i, PRICES["bitcoin"]) for i in ids if not i.startswith("nope")}
    return httpx.Response(200, json=body)


def market_chart(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/coins/nope-coin/market_chart"):
        return json_response("coingecko", "coin_not_found.json", status=404)
    return json_response("coingecko", "market_chart_daily_ok.json")


@pytest.fixture
def gecko(fake: FakeApi, clock) -> CoinGeckoClient:
    fake.route("/simple/price", simple_price)
    fake.route("/coins/bitcoin/market_chart", market_chart)
    fake.route("/coins/nope-coin/market_chart", market_chart)
    return CoinGeckoClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def test_it_parses_simple_prices_and_sends_the_key_as_a_header(gecko: CoinGeckoClient, fake: FakeApi) -> None:
    batch = gecko.fetch_quotes(["bitcoin", "ethereum"])
    btc, eth = batch.quotes
    assert btc.symbol == "bitcoin"
    assert btc.price == Decimal("96480.12")
    assert btc.timestamp == datetime.fromtimestamp(1732886395, tz=UTC)
    assert btc.volume_24h == Decimal("41234567890.4")
    assert eth.change_24h_pct == Decimal("-0.4410")
    assert btc.currency == "USD"
    request = fake.requests[0]
    assert request.headers["x-cg-demo-api-key"] == SECRET
    assert SECRET not in str(request.url)
    assert request.url.params["ids"] == "bitcoin,ethereum"
    assert request.url.params["vs_currencies"] == "usd"


def test_a_pro_client_uses_the_pro_header(fake: FakeApi, clock) -> None:
    fake.route("/simple/price", simple_price)
    CoinGeckoClient(fake.client(), base_url=fake.base_url, api_key=SECRET, pro=True, clock=clock).fetch_quotes(
        ["bitcoin"]
    )
    assert fake.requests[0].headers["x-cg-pro-api-key"] == SECRET
    assert "x-cg-demo-api-key" not in fake.requests[0].headers


def test_a_keyless_client_sends_no_key_header(fake: FakeApi, clock) -> None:
    fake.route("/simple/price", simple_price)
    CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])
    assert "x-cg-demo-api-key" not in fake.requests[0].headers


def test_it_rejects_unknown_ids_and_keeps_the_rest(gecko: CoinGeckoClient) -> None:
    batch = gecko.fetch_quotes(["bitcoin", "nope-coin", "ethereum"])
    assert [q.symbol for q in batch.quotes] == ["bitcoin", "ethereum"]
    assert [r.symbol for r in batch.rejected] == ["nope-coin"]
    assert "unknown id" in batch.rejected[0].reason


def test_it_rejects_tickers_passed_instead_of_ids_without_asking(gecko: CoinGeckoClient, fake: FakeApi) -> None:
    batch = gecko.fetch_quotes(["BTC"])
    assert batch.rejected[0].symbol == "BTC"
    assert fake.requests == []


@pytest.mark.parametrize("n", [1, 250, 251, 600])
def test_it_splits_ids_into_ceil_n_over_limit_requests(gecko: CoinGeckoClient, fake: FakeApi, n: int) -> None:
    ids = [f"coin-{i}" for i in range(n)]
    batch = gecko.fetch_quotes(ids)
    assert len(fake.requests) == math.ceil(n / CoinGeckoClient.batch_limit)
    assert len(batch.quotes) == n


def test_it_rejects_a_negative_price_but_keeps_the_rest(fake: FakeApi, clock) -> None:
    body = {"bitcoin": PRICES["bitcoin"], "ethereum": {**PRICES["ethereum"], "usd": -3.0}}
    fake.route("/simple/price", lambda request: httpx.Response(200, json=body))
    batch = CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin", "ethereum"])
    assert [q.symbol for q in batch.quotes] == ["bitcoin"]
    assert "negative" in batch.rejected[0].reason


def test_it_raises_transient_with_retry_after_when_throttled(fake: FakeApi, clock) -> None:
    fake.route(
        "/simple/price",
        lambda request: json_response("coingecko", "throttled.json", 429, **{"retry-after": "119"}),
    )
    with pytest.raises(TransientProviderError) as info:
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])
    assert info.value.retry_after == 119.0


def test_a_429_without_retry_after_pauses_coingecko_for_a_minute(fake: FakeApi, clock) -> None:
    fake.route("/simple/price", lambda request: json_response("coingecko", "throttled.json", 429))
    with pytest.raises(ProviderThrottledError) as info:
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])
    assert info.value.retry_after == 60.0


def test_a_cloudflare_html_429_is_still_transient(fake: FakeApi, clock) -> None:
    page = b"<html><head><title>429 Too Many Requests</title></head></html>"
    fake.route(
        "/simple/price",
        lambda request: httpx.Response(429, content=page, headers={"content-type": "text/html"}),
    )
    with pytest.raises(TransientProviderError):
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])


def test_it_raises_invalid_key_on_a_bad_key_without_leaking_it(fake: FakeApi, clock) -> None:
    fake.route("/simple/price", lambda request: json_response("coingecko", "bad_key.json", 401))
    with pytest.raises(InvalidKeyError) as info:
        CoinGeckoClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock).fetch_quotes(["bitcoin"])
    assert SECRET not in str(info.value)


def test_a_wrong_tier_key_error_code_is_an_invalid_key_even_on_400(fake: FakeApi, clock) -> None:
    body = {"error": {"status": {"error_code": 10010, "error_message": "wrong key type"}}}
    fake.route("/simple/price", lambda request: httpx.Response(400, json=body))
    with pytest.raises(InvalidKeyError):
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])


def test_a_truncated_body_is_transient(fake: FakeApi, clock) -> None:
    fake.route("/simple/price", lambda request: httpx.Response(200, content=b'{"bitcoin": {"usd": 96480.1'))
    with pytest.raises(TruncatedReplyError):
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])


def test_a_bare_nan_refuses_only_the_coin_that_carries_it(fake: FakeApi, clock) -> None:
    body = (
        b'{"bitcoin": {"usd": NaN, "last_updated_at": 1732885200},'
        b' "ethereum": {"usd": 3587.1, "last_updated_at": 1732885200}}'
    )
    fake.route("/simple/price", lambda request: httpx.Response(200, content=body))
    batch = CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin", "ethereum"])
    assert [q.symbol for q in batch.quotes] == ["ethereum"]
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("bitcoin", False)]


@pytest.mark.parametrize("body", [b"<!doctype html><p>oops</p>", b"[1, 2]"])
def test_it_raises_malformed_on_broken_bodies(fake: FakeApi, clock, body: bytes) -> None:
    fake.route("/simple/price", lambda request: httpx.Response(200, content=body))
    with pytest.raises(MalformedReplyError):
        CoinGeckoClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["bitcoin"])


def test_it_buckets_market_chart_points_into_daily_bars(gecko: CoinGeckoClient, fake: FakeApi) -> None:
    bars = gecko.fetch_bars("bitcoin", interval="1d", limit=3)
    assert [b.timestamp for b in bars] == [
        datetime(2024, 11, 27, tzinfo=UTC),
        datetime(2024, 11, 28, tzinfo=UTC),
        datetime(2024, 11, 29, tzinfo=UTC),
    ]
    last = bars[-1]  # the 00:00 point and the "now" point share the 29th
    assert (last.open, last.close) == (Decimal("95422.10"), Decimal("96480.12"))
    assert last.high == Decimal("96480.12") and last.low == Decimal("95422.10")
    assert last.volume == Decimal("41234567890.4")
    assert fake.requests[0].url.params["days"] == "3"
    assert fake.requests[0].url.params["interval"] == "daily"


def test_it_raises_unknown_symbol_for_a_coin_that_does_not_exist(gecko: CoinGeckoClient) -> None:
    with pytest.raises(UnknownSymbolError, match="coin not found"):
        gecko.fetch_bars("nope-coin")


def test_to_quote_is_pure() -> None:
    quote = _to_quote("ethereum", {"usd": Decimal("3586.44"), "last_updated_at": 1732886398}, now=FIXED_NOW)
    assert quote.price == Decimal("3586.44")
    assert quote.change_24h_pct is None
