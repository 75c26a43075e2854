"""Hostile symbols must never steer a request off the provider's host or out of its path pattern.

Every request is recorded by the fake; after each call we assert host, path and the symbol-bearing
query parameter, for every client and every hostile symbol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.providers.alphavantage import AlphaVantageClient
from backend.providers.binance import BinanceClient
from backend.providers.coingecko import CoinGeckoClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.errors import UnknownSymbolError
from backend.providers.yahoo import YahooClient
from tests.unit.providers.fakes import FIXED_NOW, SECRET, FakeApi, fixture_json

HOSTILE = [
    "",
    " ",
    "AA PL",
    ".",
    "..",
    "../x",
    "../../admin",
    "AAPL/../../admin",
    "AAPL%2F..%2F..%2Fadmin",
    "%2e%2e",
    "AAPL?apikey=stolen",
    "AAPL#frag",
    "@evil.com",
    "AAPL@evil.com",
    "http://other.test/x",
    "//other.test",
    "AAPL\r\nHost: other.test",
    "AAPL\n",
    "\tAAPL",
    "ÄAPL",
    "ＡＡＰＬ",
    "AAPL\u2028",
    "A,B",
    'BTC","ETH',
    "bitcoin,ethereum",
    "a" * 200,
    "\\..\\x",
    "AAPL;DROP",
]

HOST = "api.test"
PREFIX = "/pfx"


@dataclass(frozen=True)
class Target:
    name: str
    valid: str
    build: Callable[[FakeApi], Any]
    # path (without prefix) -> the query parameter that carries symbols, or None if none does
    paths: dict[str, str | None]
    bar_path: re.Pattern[str] | None
    route: Callable[[FakeApi], None]


def _binance_route(fake: FakeApi) -> None:
    row = fixture_json("binance", "ticker_24hr_ok.json")[0]
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, json=[row]))
    fake.route("/api/v3/klines", lambda request: httpx.Response(200, json=[]))


def _gecko_route(fake: FakeApi) -> None:
    body = fixture_json("coingecko", "simple_price_ok.json")
    fake.route("/simple/price", lambda request: httpx.Response(200, json=body))


def _yahoo_route(fake: FakeApi) -> None:
    body = fixture_json("yahoo", "quote_ok.json")
    fake.route("/", lambda request: httpx.Response(404, headers={"set-cookie": "A3=x"}))
    fake.route("/v1/test/getcrumb", lambda request: httpx.Response(200, text="crumb123"))
    fake.route("/v7/finance/quote", lambda request: httpx.Response(200, json=body))


def _av_route(fake: FakeApi) -> None:
    body = fixture_json("alphavantage", "global_quote_ok.json")
    fake.route("/query", lambda request: httpx.Response(200, json=body))


def _cmc_route(fake: FakeApi) -> None:
    body = fixture_json("coinmarketcap", "quotes_latest_ok.json")
    fake.route("/v1/cryptocurrency/quotes/latest", lambda request: httpx.Response(200, json=body))


def clock():
    return FIXED_NOW


TARGETS = [
    Target(
        "binance",
        "BTCUSDT",
        lambda f: BinanceClient(f.client(), base_url=f.base_url, clock=clock),
        {"/api/v3/ticker/24hr": "symbols", "/api/v3/klines": "symbol"},
        None,
        _binance_route,
    ),
    Target(
        "coingecko",
        "bitcoin",
        lambda f: CoinGeckoClient(f.client(), base_url=f.base_url, api_key=SECRET, clock=clock),
        {"/simple/price": "ids"},
        re.compile(r"/coins/[a-z0-9-]+/market_chart"),
        _gecko_route,
    ),
    Target(
        "yahoo",
        "AAPL",
        lambda f: YahooClient(f.client(), base_url=f.base_url, clock=clock),
        {"/": None, "/v1/test/getcrumb": None, "/v7/finance/quote": "symbols"},
        re.compile(r"/v8/finance/chart/[A-Z0-9.=%-]+"),
        _yahoo_route,
    ),
    Target(
        "alphavantage",
        "IBM",
        lambda f: AlphaVantageClient(f.client(), base_url=f.base_url, api_key=SECRET, clock=clock),
        {"/query": "symbol"},
        None,
        _av_route,
    ),
    Target(
        "coinmarketcap",
        "BTC",
        lambda f: CoinMarketCapClient(f.client(), base_url=f.base_url, api_key=SECRET, clock=clock),
        {"/v1/cryptocurrency/quotes/latest": "symbol"},
        None,
        _cmc_route,
    ),
]


def symbols_in(request: httpx.Request, param: str) -> list[str]:
    value = request.url.params[param]
    return json.loads(value) if value.startswith("[") else value.split(",")


def assert_requests_stay_in_bounds(fake: FakeApi, target: Target, valid: str) -> None:
    for request in fake.requests:
        assert request.url.host == HOST
        assert request.url.scheme == "https"
        assert request.url.path.startswith(PREFIX + "/")
        path = request.url.path[len(PREFIX) :]
        bar_ok = target.bar_path is not None and target.bar_path.fullmatch(request.url.raw_path.decode())
        assert path in target.paths or bar_ok, path
        param = target.paths.get(path)
        if param is not None:
            assert symbols_in(request, param) == [valid]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("symbol", HOSTILE, ids=repr)
def test_a_hostile_symbol_in_a_batch_is_rejected_and_never_requested(target: Target, symbol: str) -> None:
    fake = FakeApi(host=HOST, prefix=PREFIX)
    target.route(fake)
    batch = target.build(fake).fetch_quotes([symbol, target.valid])
    assert [q.symbol for q in batch.quotes] == [target.valid]
    assert len(batch.rejected) == 1
    assert "\n" not in batch.rejected[0].symbol and "\r" not in batch.rejected[0].symbol
    assert fake.requests, "the valid symbol should still have been requested"
    assert_requests_stay_in_bounds(fake, target, target.valid)


BAR_TARGETS = [t for t in TARGETS if t.name in ("binance", "coingecko", "yahoo", "alphavantage")]


@pytest.mark.parametrize("target", BAR_TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("symbol", HOSTILE, ids=repr)
def test_a_hostile_symbol_for_bars_raises_before_any_request(target: Target, symbol: str) -> None:
    fake = FakeApi(host=HOST, prefix=PREFIX)
    target.route(fake)
    with pytest.raises(UnknownSymbolError):
        target.build(fake).fetch_bars(symbol)
    assert fake.requests == []


def test_a_valid_index_symbol_stays_inside_one_path_segment() -> None:
    fake = FakeApi(host=HOST, prefix=PREFIX)
    fake.route(
        "/v8/finance/chart/^GSPC",
        lambda request: httpx.Response(200, json=fixture_json("yahoo", "chart_ok.json")),
    )
    YahooClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_bars("^GSPC")
    (request,) = fake.requests
    assert request.url.host == HOST
    assert request.url.raw_path.split(b"?")[0] == b"/pfx/v8/finance/chart/%5EGSPC"


def test_non_string_symbols_are_rejected_not_stringified() -> None:
    fake = FakeApi(host=HOST, prefix=PREFIX)
    _binance_route(fake)
    batch = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes([None, 42, "BTCUSDT"])  # type: ignore[list-item]
    assert [q.symbol for q in batch.quotes] == ["BTCUSDT"]
    assert len(batch.rejected) == 2
    assert symbols_in(fake.requests[0], "symbols") == ["BTCUSDT"]
