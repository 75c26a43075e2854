"""The fake provider server speaks each API's documented wire format over real loopback HTTP."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from backend.fake_provider import FAULT_KINDS, PROVIDERS, FakeProviderServer

# Friday 2026-11-27 18:00 UTC: 13:00 ET, the minute the NYSE closes early (the fake follows the real calendar).
FROZEN_NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"}
KEYS = {"coingecko": "cg-key", "alphavantage": "av-key", "coinmarketcap": "cmc-key", "newsapi": "news-key"}

# One cheap, valid request per provider: (path under the mount, params, headers).
OK_REQUESTS = {
    "yahoo": ("/v8/finance/chart/AAPL", {"range": "5d", "interval": "1d"}, {}),
    "binance": ("/api/v3/ticker/24hr", {"symbols": '["BTCUSDT","ETHUSDT"]'}, {}),
    "coingecko": ("/api/v3/simple/price", {"ids": "bitcoin", "vs_currencies": "usd"}, {}),
    "alphavantage": ("/query", {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": "x"}, {}),
    "coinmarketcap": ("/v1/cryptocurrency/quotes/latest", {"symbol": "BTC,ETH"}, {}),
    "newsapi": ("/v2/everything", {"q": "bitcoin", "pageSize": "5"}, {}),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(now=FROZEN_NOW) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    server.clear_faults()
    server.clear_requests()
    server.clear_unknown_symbols()
    yield server
    server.clear_faults()


@pytest.fixture
def http(fake: FakeProviderServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        yield client


def get_ok(http: httpx.Client, provider: str) -> httpx.Response:
    path, params, headers = OK_REQUESTS[provider]
    return http.get(f"/{provider}{path}", params=params, headers=headers)


def yahoo_session(http: httpx.Client) -> str:
    """Run the cookie + crumb flow; the client's cookie jar keeps A3."""
    assert http.get("/yahoo/", headers=BROWSER).status_code == 200
    crumb = http.get("/yahoo/v1/test/getcrumb", headers=BROWSER)
    assert crumb.status_code == 200
    return crumb.text


# --- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "", "example.com", "192.168.0.1"])
def test_it_refuses_to_bind_outside_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        FakeProviderServer(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost"])
def test_it_binds_loopback_hosts(host: str) -> None:
    with FakeProviderServer(host=host) as fake:
        assert httpx.get(fake.url + "/_control/health").json()["status"] == "ok"


def test_it_mounts_every_provider_under_its_own_prefix(fake: FakeProviderServer) -> None:
    assert [fake.base_url(p) for p in PROVIDERS] == [f"{fake.url}/{p}" for p in PROVIDERS]
    assert fake.url.startswith("http://127.0.0.1:")
    with pytest.raises(ValueError):
        fake.base_url("bloomberg")


def test_it_answers_404_outside_the_provider_mounts(http: httpx.Client) -> None:
    response = http.get("/bloomberg/api/quote")
    assert response.status_code == 404
    assert "/binance" in response.json()["error"]


def test_it_keeps_connections_alive_for_http11_clients(fake: FakeProviderServer, http: httpx.Client) -> None:
    for _ in range(3):
        response = get_ok(http, "binance")
        assert response.http_version == "HTTP/1.1"
        assert int(response.headers["content-length"]) == len(response.content)
    assert len({entry["client_port"] for entry in fake.requests("binance")}) == 1


def test_stop_closes_the_port() -> None:
    fake = FakeProviderServer().start()
    url = fake.url
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_control/health", timeout=2)


def test_same_clock_gives_identical_payloads() -> None:
    bodies = []
    for _ in range(2):
        with FakeProviderServer(now=FROZEN_NOW) as fake, httpx.Client(base_url=fake.url) as client:
            bodies.append(
                [get_ok(client, p).content for p in ("binance", "coingecko", "coinmarketcap", "alphavantage")]
                + [client.get("/binance/api/v3/klines", params={"symbol": "SOLUSDT", "interval": "1h"}).content]
            )
    assert bodies[0] == bodies[1]


# --- Yahoo -------------------------------------------------------------------------------------


def test_yahoo_quote_needs_cookie_then_crumb(http: httpx.Client) -> None:
    no_cookie = http.get("/yahoo/v7/finance/quote", params={"symbols": "AAPL"}, headers=BROWSER)
    assert no_cookie.status_code == 401
    assert no_cookie.json()["finance"]["error"]["description"] == "Invalid Cookie"

    crumb = yahoo_session(http)
    no_crumb = http.get("/yahoo/v7/finance/quote", params={"symbols": "AAPL"}, headers=BROWSER)
    assert no_crumb.status_code == 401
    assert no_crumb.json()["finance"]["error"]["description"].startswith("Invalid Crumb")

    ok = http.get("/yahoo/v7/finance/quote", params={"symbols": "AAPL", "crumb": crumb}, headers=BROWSER)
    assert ok.status_code == 200
    assert ok.json()["quoteResponse"]["result"][0]["symbol"] == "AAPL"


def test_yahoo_getcrumb_throttles_non_browser_user_agents(http: httpx.Client) -> None:
    http.get("/yahoo/", headers=BROWSER)
    response = http.get("/yahoo/v1/test/getcrumb", headers={"User-Agent": "python-httpx/0.28"})
    assert response.status_code == 429
    assert response.text == "Too Many Requests"


def test_yahoo_expired_sessions_need_a_new_cookie(fake: FakeProviderServer, http: httpx.Client) -> None:
    crumb = yahoo_session(http)
    fake.expire_yahoo_sessions()
    response = http.get("/yahoo/v7/finance/quote", params={"symbols": "AAPL", "crumb": crumb}, headers=BROWSER)
    assert response.status_code == 401


def test_yahoo_quote_omits_unknown_symbols(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.add_unknown_symbols("msft")
    crumb = yahoo_session(http)
    params = {"symbols": "AAPL,UNKNOWN1,MSFT,BTC-USD", "crumb": crumb}
    result = http.get("/yahoo/v7/finance/quote", params=params, headers=BROWSER).json()["quoteResponse"]
    assert result["error"] is None
    rows = {row["symbol"]: row for row in result["result"]}
    assert list(rows) == ["AAPL", "BTC-USD"]
    assert rows["BTC-USD"]["quoteType"] == "CRYPTOCURRENCY"
    assert isinstance(rows["AAPL"]["regularMarketPrice"], float)
    assert isinstance(rows["AAPL"]["regularMarketTime"], int)  # epoch seconds
    assert rows["AAPL"]["regularMarketTime"] <= FROZEN_NOW.timestamp()


def test_yahoo_chart_returns_aligned_ohlcv_arrays(http: httpx.Client) -> None:
    body = http.get("/yahoo/v8/finance/chart/AAPL", params={"range": "1mo", "interval": "1d"}).json()
    assert body["chart"]["error"] is None
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    assert 18 <= len(result["timestamp"]) <= 23  # weekdays in a month
    assert {len(quote[k]) for k in ("open", "high", "low", "close", "volume")} == {len(result["timestamp"])}
    assert result["indicators"]["adjclose"][0]["adjclose"] == quote["close"]
    assert result["meta"]["symbol"] == "AAPL"
    assert result["meta"]["exchangeTimezoneName"] == "America/New_York"
    # Daily bars are stamped at the NYSE open (14:30 UTC in winter, 13:30 UTC in summer).
    new_york = ZoneInfo("America/New_York")
    assert {datetime.fromtimestamp(t, new_york).strftime("%H:%M") for t in result["timestamp"]} == {"09:30"}
    assert all(h >= max(o, c) for o, h, c in zip(quote["open"], quote["high"], quote["close"], strict=True))


def test_yahoo_chart_intraday_has_no_adjclose_and_honours_periods(http: httpx.Client) -> None:
    start = int(datetime(2026, 11, 26, 0, 0, tzinfo=UTC).timestamp())
    end = int(datetime(2026, 11, 27, 0, 0, tzinfo=UTC).timestamp())
    params = {"period1": start, "period2": end, "interval": "60m"}
    result = http.get("/yahoo/v8/finance/chart/BTC-USD", params=params).json()["chart"]["result"][0]
    assert result["timestamp"] == list(range(start, end, 3600))  # crypto trades around the clock
    assert "adjclose" not in result["indicators"]


def test_yahoo_chart_of_a_window_without_trades_has_no_timestamps_and_empty_columns(http: httpx.Client) -> None:
    """As Yahoo answers a 1-minute chart over a weekend (tests/fixtures/yahoo/chart_no_trades.json)."""
    saturday = int(datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp())
    params = {"period1": saturday, "period2": saturday + 6 * 3600, "interval": "1m"}
    response = http.get("/yahoo/v8/finance/chart/AAPL", params=params)
    assert response.status_code == 200
    result = response.json()["chart"]["result"][0]
    assert "timestamp" not in result
    assert result["indicators"] == {"quote": [{}]}
    assert result["meta"]["symbol"] == "AAPL"


def test_yahoo_chart_unknown_symbol_is_404_with_chart_error(http: httpx.Client) -> None:
    response = http.get("/yahoo/v8/finance/chart/ZZZNOPE", params={"range": "5d"})
    assert response.status_code == 404
    assert response.json() == {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }


def test_yahoo_chart_refuses_more_than_8_days_of_1m(http: httpx.Client) -> None:
    params = {"period1": int(FROZEN_NOW.timestamp()) - 10 * 86400, "interval": "1m"}
    response = http.get("/yahoo/v8/finance/chart/AAPL", params=params)
    assert response.status_code == 422
    assert "Only 8 days" in response.json()["chart"]["error"]["description"]


# --- Binance -----------------------------------------------------------------------------------


def test_binance_24hr_batch_has_string_prices_and_weight_header(http: httpx.Client) -> None:
    response = http.get("/binance/api/v3/ticker/24hr", params={"symbols": '["BTCUSDT","ETHBTC"]'})
    rows = response.json()
    assert [r["symbol"] for r in rows] == ["BTCUSDT", "ETHBTC"]
    assert all(isinstance(rows[0][k], str) for k in ("lastPrice", "priceChangePercent", "volume", "bidPrice"))
    assert isinstance(rows[0]["closeTime"], int) and rows[0]["closeTime"] - rows[0]["openTime"] == 86_400_000
    assert float(rows[1]["lastPrice"]) < 1  # ETH priced in BTC
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 2


def test_binance_single_symbol_returns_an_object_and_mini_drops_fields(http: httpx.Client) -> None:
    single = http.get("/binance/api/v3/ticker/price", params={"symbol": "BTCUSDT"}).json()
    assert single == {"symbol": "BTCUSDT", "price": "96480.12000000"}
    mini = http.get("/binance/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "MINI"}).json()
    assert "lastPrice" in mini and "bidPrice" not in mini and "priceChange" not in mini


def test_binance_one_unknown_symbol_fails_the_whole_batch(http: httpx.Client) -> None:
    response = http.get("/binance/api/v3/ticker/24hr", params={"symbols": '["BTCUSDT","ZZZUSDT"]'})
    assert response.status_code == 400
    assert response.json() == {"code": -1121, "msg": "Invalid symbol."}


@pytest.mark.parametrize("raw", ['["BTCUSDT", "ETHUSDT"]', '["btcusdt"]', "BTCUSDT", "[]"])
def test_binance_rejects_malformed_symbols_arrays(http: httpx.Client, raw: str) -> None:
    response = http.get("/binance/api/v3/ticker/price", params={"symbols": raw})
    assert response.status_code == 400
    assert response.json()["code"] == -1100


def test_binance_klines_are_twelve_field_rows_on_interval_boundaries(http: httpx.Client) -> None:
    rows = http.get("/binance/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h", "limit": 5}).json()
    assert len(rows) == 5
    for row, following in zip(rows, rows[1:], strict=False):
        assert following[0] - row[0] == 3_600_000
        assert row[6] == following[0] - 1
    first = rows[0]
    assert len(first) == 12 and first[0] % 3_600_000 == 0 and first[11] == "0"
    assert [type(v) for v in first] == [int, str, str, str, str, str, int, str, int, str, str, str]
    assert rows[-1][0] <= FROZEN_NOW.timestamp() * 1000  # the last bar may still be forming


def test_binance_klines_validate_interval_and_limit(http: httpx.Client) -> None:
    bad_interval = http.get("/binance/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "7m"})
    assert bad_interval.json()["code"] == -1120
    too_many = http.get("/binance/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1001})
    assert too_many.status_code == 400


def test_binance_serves_a_thousand_symbol_batch(http: httpx.Client) -> None:
    before = int(http.get("/binance/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).headers["X-MBX-USED-WEIGHT-1M"])
    symbols = json.dumps([f"C{i}USDT" for i in range(1000)], separators=(",", ":"))
    response = http.get("/binance/api/v3/ticker/24hr", params={"symbols": symbols})
    assert len(response.json()) == 1000
    used = int(response.headers["X-MBX-USED-WEIGHT-1M"])
    assert used - before in (80, used)  # 101+ symbols weigh 80 (unless the minute rolled over)


def test_binance_weight_limit_answers_429_when_exceeded() -> None:
    with FakeProviderServer(now=FROZEN_NOW, binance_weight_limit=100) as fake, httpx.Client() as client:
        big = json.dumps([f"C{i}USDT" for i in range(50)], separators=(",", ":"))
        url = fake.base_url("binance") + "/api/v3/ticker/24hr"
        assert client.get(url, params={"symbols": big}).status_code == 200  # weight 40
        assert client.get(url, params={"symbols": big}).status_code == 200  # 80
        throttled = client.get(url, params={"symbols": big})  # would be 120
    assert throttled.status_code == 429
    assert throttled.json()["code"] == -1003
    assert int(throttled.headers["Retry-After"]) >= 1


# --- CoinGecko ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/coingecko/api/v3", "/coingecko"])
def test_coingecko_simple_price_omits_unknown_ids(http: httpx.Client, prefix: str) -> None:
    params = {
        "ids": "bitcoin,unknown-coin,ethereum",
        "vs_currencies": "usd,eur",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }
    body = http.get(f"{prefix}/simple/price", params=params).json()
    assert set(body) == {"bitcoin", "ethereum"}
    assert set(body["bitcoin"]) == {"usd", "eur", "usd_24h_change", "eur_24h_change", "last_updated_at"}
    assert body["bitcoin"]["usd"] == 96480.12
    assert isinstance(body["bitcoin"]["last_updated_at"], int)


def test_coingecko_only_unknown_ids_give_an_empty_object(http: httpx.Client) -> None:
    response = http.get("/coingecko/api/v3/simple/price", params={"ids": "zzz-coin", "vs_currencies": "usd"})
    assert (response.status_code, response.json()) == (200, {})


def test_coingecko_markets_has_iso_last_updated_and_pages(http: httpx.Client) -> None:
    params = {"vs_currency": "usd", "ids": "ethereum,bitcoin,solana", "per_page": 2, "page": 1}
    rows = http.get("/coingecko/api/v3/coins/markets", params=params).json()
    assert [r["id"] for r in rows] == ["bitcoin", "ethereum"]  # market cap order
    assert rows[0]["last_updated"].endswith("Z") and "T" in rows[0]["last_updated"]
    page2 = http.get("/coingecko/api/v3/coins/markets", params={**params, "page": 2}).json()
    assert [r["id"] for r in page2] == ["solana"]


def test_coingecko_market_chart_is_ms_pairs_and_404s_unknown_coins(http: httpx.Client) -> None:
    body = http.get("/coingecko/api/v3/coins/bitcoin/market_chart", params={"vs_currency": "usd", "days": "7"}).json()
    assert set(body) == {"prices", "market_caps", "total_volumes"}
    stamps = [point[0] for point in body["prices"]]
    assert stamps[1] - stamps[0] == 3_600_000  # 2-90 days: hourly
    assert stamps[-1] == int(FROZEN_NOW.timestamp() * 1000)  # the last point is "now"
    missing = http.get("/coingecko/api/v3/coins/unknown-coin/market_chart", params={"vs_currency": "usd", "days": 1})
    assert (missing.status_code, missing.json()) == (404, {"error": "coin not found"})


# --- Alpha Vantage -----------------------------------------------------------------------------


def test_alphavantage_global_quote_uses_numbered_string_keys(http: httpx.Client) -> None:
    params = {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": "demo"}
    quote = http.get("/alphavantage/query", params=params).json()["Global Quote"]
    assert list(quote)[0] == "01. symbol" and quote["01. symbol"] == "IBM"
    assert quote["05. price"] == "229.4100"
    assert quote["10. change percent"].endswith("%")
    assert quote["07. latest trading day"] == "2026-11-27"


def test_alphavantage_unknown_symbol_shapes(http: httpx.Client) -> None:
    quote = http.get("/alphavantage/query", params={"function": "GLOBAL_QUOTE", "symbol": "ZZZX", "apikey": "k"})
    assert (quote.status_code, quote.json()) == (200, {"Global Quote": {}})
    daily = http.get("/alphavantage/query", params={"function": "TIME_SERIES_DAILY", "symbol": "ZZZX", "apikey": "k"})
    assert daily.status_code == 200
    assert daily.json()["Error Message"].startswith("Invalid API call")


def test_alphavantage_daily_series_has_100_weekday_points(http: httpx.Client) -> None:
    params = {"function": "TIME_SERIES_DAILY", "symbol": "IBM", "apikey": "k"}
    body = http.get("/alphavantage/query", params=params).json()
    series = body["Time Series (Daily)"]
    assert len(series) == 100
    assert body["Meta Data"]["3. Last Refreshed"] == max(series) == "2026-11-27"
    assert all(datetime.fromisoformat(day).weekday() < 5 for day in series)
    assert set(series["2026-11-27"]) == {"1. open", "2. high", "3. low", "4. close", "5. volume"}


def test_alphavantage_bulk_quotes_are_premium_and_capped_at_100() -> None:
    with FakeProviderServer(now=FROZEN_NOW, alphavantage_premium=False) as fake:
        free = httpx.get(fake.base_url("alphavantage") + "/query?function=REALTIME_BULK_QUOTES&symbol=IBM&apikey=k")
    assert "Information" in free.json()
    with (
        FakeProviderServer(now=FROZEN_NOW) as fake,
        httpx.Client(base_url=fake.base_url("alphavantage")) as client,
    ):
        ok = client.get("/query", params={"function": "REALTIME_BULK_QUOTES", "symbol": "IBM,MSFT,ZZZ1"}).json()
        over = client.get(
            "/query",
            params={"function": "REALTIME_BULK_QUOTES", "symbol": ",".join(f"S{i}" for i in range(101))},
        )
    assert [row["symbol"] for row in ok["data"]] == ["IBM", "MSFT"]
    assert "Error Message" in over.json()


# --- CoinMarketCap -----------------------------------------------------------------------------


def test_cmc_quotes_are_keyed_by_symbol_with_status(http: httpx.Client) -> None:
    body = http.get(
        "/coinmarketcap/v1/cryptocurrency/quotes/latest", params={"symbol": "BTC,ETH", "convert": "USD"}
    ).json()
    assert body["status"]["error_code"] == 0 and body["status"]["credit_count"] == 1
    assert set(body["data"]) == {"BTC", "ETH"}
    btc = body["data"]["BTC"]
    assert (btc["id"], btc["slug"], btc["cmc_rank"]) == (1, "bitcoin", 1)
    assert btc["quote"]["USD"]["price"] == 96480.12
    assert btc["quote"]["USD"]["last_updated"].endswith("Z")


def test_cmc_unknown_symbol_fails_unless_skip_invalid(http: httpx.Client) -> None:
    url = "/coinmarketcap/v1/cryptocurrency/quotes/latest"
    strict = http.get(url, params={"symbol": "BTC,ZZZQ"})
    assert strict.status_code == 400
    assert strict.json()["status"]["error_code"] == 400
    assert "data" not in strict.json()
    lenient = http.get(url, params={"symbol": "BTC,ZZZQ", "skip_invalid": "true"}).json()
    assert list(lenient["data"]) == ["BTC"]


def test_cmc_v2_wraps_each_symbol_in_an_array(http: httpx.Client) -> None:
    body = http.get("/coinmarketcap/v2/cryptocurrency/quotes/latest", params={"symbol": "ETH"}).json()
    assert isinstance(body["data"]["ETH"], list) and body["data"]["ETH"][0]["id"] == 1027
    by_id = http.get("/coinmarketcap/v2/cryptocurrency/quotes/latest", params={"id": "1,1027"}).json()
    assert by_id["data"]["1"]["symbol"] == "BTC"


# --- NewsAPI -----------------------------------------------------------------------------------


def test_newsapi_everything_pages_through_articles(http: httpx.Client) -> None:
    first = http.get("/newsapi/v2/everything", params={"q": "bitcoin", "pageSize": 10, "page": 1}).json()
    assert first["status"] == "ok" and first["totalResults"] >= 20
    assert len(first["articles"]) == 10
    article = first["articles"][0]
    assert set(article) == {
        "source",
        "author",
        "title",
        "description",
        "url",
        "urlToImage",
        "publishedAt",
        "content",
    }
    assert set(article["source"]) == {"id", "name"}
    assert article["publishedAt"].endswith("Z")
    second = http.get("/newsapi/v2/everything", params={"q": "bitcoin", "pageSize": 10, "page": 2}).json()
    assert not {a["url"] for a in first["articles"]} & {a["url"] for a in second["articles"]}


def test_newsapi_errors_use_status_code_message(http: httpx.Client) -> None:
    missing = http.get("/newsapi/v2/everything", params={"pageSize": 10})
    assert missing.status_code == 400 and missing.json()["code"] == "parametersMissing"
    too_big = http.get("/newsapi/v2/everything", params={"q": "btc", "pageSize": 101})
    assert too_big.json() == {
        "status": "error",
        "code": "parameterInvalid",
        "message": too_big.json()["message"],
    }
    unknown = http.get("/newsapi/v2/everything", params={"q": "ZZZCOIN"}).json()
    assert (unknown["totalResults"], unknown["articles"]) == (0, [])


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_429_carries_retry_after_and_the_providers_body(
    fake: FakeProviderServer, http: httpx.Client, provider: str
) -> None:
    fake.set_fault(provider, "status_429", count=1, retry_after=7)
    response = get_ok(http, provider)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    expected_fragment = {
        "yahoo": "Too Many Requests",
        "binance": '"code":-1003',
        "coingecko": '"error_code":429',
        "alphavantage": '"Information"',
        "coinmarketcap": '"error_code":1008',
        "newsapi": '"code":"rateLimited"',
    }[provider]
    assert expected_fragment in response.text
    assert get_ok(http, provider).status_code == 200  # count=1 has expired


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_429_without_retry_after_omits_the_header(
    fake: FakeProviderServer, http: httpx.Client, provider: str
) -> None:
    fake.set_fault(provider, "status_429_no_retry_after", count=1)
    response = get_ok(http, provider)
    assert response.status_code == 429
    assert "retry-after" not in response.headers


@pytest.mark.parametrize("kind,status", [("status_500", 500), ("status_503", 503)])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_server_error_faults(
    fake: FakeProviderServer, http: httpx.Client, provider: str, kind: str, status: int
) -> None:
    fake.set_fault(provider, kind, count=1)
    assert get_ok(http, provider).status_code == status


def test_server_error_bodies_follow_each_providers_error_shape(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.set_fault("binance", "status_500", count=1)
    fake.set_fault("coinmarketcap", "status_500", count=1)
    fake.set_fault("newsapi", "status_500", count=1)
    assert get_ok(http, "binance").json()["code"] == -1000
    assert get_ok(http, "coinmarketcap").json()["status"]["error_code"] == 500
    assert get_ok(http, "newsapi").json()["code"] == "unexpectedError"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_html_error_is_a_cloudflare_like_page(fake: FakeProviderServer, http: httpx.Client, provider: str) -> None:
    fake.set_fault(provider, "html_error", count=1)
    response = get_ok(http, provider)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>") and "Cloudflare" in response.text


def test_html_error_status_can_be_chosen(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.set_fault("coingecko", "html_error", count=1, status=429)
    assert get_ok(http, "coingecko").status_code == 429


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_json_is_a_200_that_does_not_parse(
    fake: FakeProviderServer, http: httpx.Client, provider: str
) -> None:
    whole = get_ok(http, provider).content
    fake.set_fault(provider, "truncated_json", count=1)
    response = get_ok(http, provider)
    assert response.status_code == 200
    assert whole.startswith(response.content) and len(response.content) < len(whole)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_nan_values_put_nan_in_prices(fake: FakeProviderServer, http: httpx.Client) -> None:
    for provider in ("binance", "yahoo", "coingecko", "alphavantage", "coinmarketcap"):
        fake.set_fault(provider, "nan_values", count=1)
    assert get_ok(http, "binance").json()[0]["lastPrice"] == "NaN"  # string-priced API
    closes = get_ok(http, "yahoo").json()["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    assert all(math.isnan(c) for c in closes)  # bare NaN tokens: not strict JSON
    assert math.isnan(get_ok(http, "coingecko").json()["bitcoin"]["usd"])
    assert get_ok(http, "alphavantage").json()["Global Quote"]["05. price"] == "NaN"
    assert math.isnan(get_ok(http, "coinmarketcap").json()["data"]["BTC"]["quote"]["USD"]["price"])
    assert get_ok(http, "binance").json()[0]["lastPrice"] != "NaN"  # count expired


def test_nan_values_is_refused_for_newsapi(fake: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="newsapi"):
        fake.set_fault("newsapi", "nan_values")


@pytest.mark.parametrize(
    "provider,status,fragment",
    [
        ("alphavantage", 200, '"Information":'),
        ("yahoo", 429, "Too Many Requests"),
        ("binance", 418, "IP banned until"),
        ("coingecko", 429, '"error_code":429'),
        ("coinmarketcap", 429, '"error_code":1009'),
        ("newsapi", 429, '"apiKeyExhausted"'),
    ],
)
def test_throttle_body_is_each_providers_own_signal(
    fake: FakeProviderServer, http: httpx.Client, provider: str, status: int, fragment: str
) -> None:
    fake.set_fault(provider, "throttle_body", count=1)
    response = get_ok(http, provider)
    assert response.status_code == status
    assert fragment in response.text


def test_alphavantage_throttle_variants(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.set_fault("alphavantage", "throttle_body", count=1, variant="note")
    body = get_ok(http, "alphavantage").json()
    assert list(body) == ["Note"] and "5 calls per minute" in body["Note"]


def test_yahoo_getcrumb_throttle_says_edge(fake: FakeProviderServer, http: httpx.Client) -> None:
    http.get("/yahoo/", headers=BROWSER)
    fake.set_fault("yahoo", "throttle_body", count=1, path="/v1/test/getcrumb")
    assert get_ok(http, "yahoo").status_code == 200  # path-scoped fault leaves the chart alone
    response = http.get("/yahoo/v1/test/getcrumb", headers=BROWSER)
    assert (response.status_code, response.text) == (429, "Edge: Too Many Requests")


@pytest.mark.parametrize(
    "provider,status,check",
    [
        ("yahoo", 401, lambda b: b["finance"]["error"]["code"] == "Unauthorized"),
        ("binance", 401, lambda b: b["code"] == -2015),
        ("coingecko", 401, lambda b: b["error"]["status"]["error_code"] == 10002),
        ("alphavantage", 200, lambda b: "apikey is invalid" in b["Error Message"]),
        ("coinmarketcap", 401, lambda b: b["status"]["error_code"] == 1001),
        ("newsapi", 401, lambda b: b["code"] == "apiKeyInvalid"),
    ],
)
def test_bad_key_fault_gives_each_invalid_key_reply(
    fake: FakeProviderServer, http: httpx.Client, provider: str, status: int, check: object
) -> None:
    fake.set_fault(provider, "bad_key", count=1)
    response = get_ok(http, provider)
    assert response.status_code == status
    assert check(response.json())  # type: ignore[operator]


def test_hang_outlasts_the_client_timeout(fake: FakeProviderServer) -> None:
    fake.set_fault("binance", "hang", count=1, seconds=1.5)
    with httpx.Client(base_url=fake.url, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            get_ok(client, "binance")
        assert time.monotonic() - started < 1.5
    with httpx.Client(base_url=fake.url, timeout=5) as client:
        assert get_ok(client, "binance").status_code == 200


def test_hang_is_bounded(fake: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="seconds"):
        fake.set_fault("binance", "hang", seconds=31)


def test_fault_count_expires_after_n_requests(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.set_fault("coingecko", "status_503", count=2)
    statuses = [get_ok(http, "coingecko").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert fake.faults() == []


def test_fault_without_count_lasts_until_cleared_and_stays_per_provider(
    fake: FakeProviderServer, http: httpx.Client
) -> None:
    fake.set_fault("newsapi", "status_500")
    assert [get_ok(http, "newsapi").status_code for _ in range(3)] == [500, 500, 500]
    assert get_ok(http, "binance").status_code == 200
    fake.clear_faults("newsapi")
    assert get_ok(http, "newsapi").status_code == 200


def test_faults_can_be_set_and_cleared_over_http(http: httpx.Client) -> None:
    armed = http.post("/_control/faults", json={"provider": "binance", "fault": "status_500", "count": 3})
    assert armed.status_code == 200 and armed.json()["fault"]["remaining"] == 3
    assert get_ok(http, "binance").status_code == 500
    assert http.get("/_control/faults").json()["faults"][0]["remaining"] == 2
    assert http.delete("/_control/faults").json() == {"faults": []}
    assert get_ok(http, "binance").status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "bloomberg", "fault": "status_500"},
        {"provider": "binance", "fault": "explode"},
        {"provider": "binance", "fault": "status_500", "count": 0},
        {"provider": "binance", "fault": "hang", "seconds": 120},
        {"provider": "binance", "fault": "status_500", "colour": "red"},
    ],
)
def test_control_rejects_bad_fault_specs(http: httpx.Client, spec: dict[str, object]) -> None:
    response = http.post("/_control/faults", json=spec)
    assert response.status_code == 400
    assert response.json()["error"]


def test_every_fault_kind_is_covered_here() -> None:
    tested = {"status_429", "status_429_no_retry_after", "status_500", "status_503", "hang", "truncated_json",
              "html_error", "nan_values", "throttle_body", "bad_key", "status_418", "nan_records",
              "cut_connection"}  # fmt: skip
    assert tested == set(FAULT_KINDS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_418_is_a_ban_with_retry_after(fake: FakeProviderServer, http: httpx.Client, provider: str) -> None:
    fake.set_fault(provider, "status_418", count=1, retry_after=120)
    response = get_ok(http, provider)
    assert response.status_code == 418
    assert response.headers["Retry-After"] == "120"
    if provider == "binance":
        assert "IP banned until" in response.json()["msg"]


def test_nan_records_put_a_bare_nan_in_the_first_record_only(fake: FakeProviderServer, http: httpx.Client) -> None:
    for provider in ("binance", "coingecko", "coinmarketcap", "yahoo"):
        fake.set_fault(provider, "nan_records", count=1)
    binance = get_ok(http, "binance")
    assert b'"lastPrice":NaN' in binance.content  # a bare literal, not the string "NaN"
    rows = binance.json()
    assert math.isnan(rows[0]["lastPrice"]) and float(rows[1]["lastPrice"]) > 0
    gecko = http.get("/coingecko/api/v3/simple/price", params={"ids": "bitcoin,ethereum", "vs_currencies": "usd"})
    assert math.isnan(gecko.json()["bitcoin"]["usd"]) and gecko.json()["ethereum"]["usd"] > 0
    cmc = get_ok(http, "coinmarketcap").json()["data"]
    assert math.isnan(cmc["BTC"]["quote"]["USD"]["price"]) and cmc["ETH"]["quote"]["USD"]["price"] > 0
    assert b"NaN" not in get_ok(http, "binance").content  # count expired


def test_nan_records_is_refused_for_newsapi(fake: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="newsapi"):
        fake.set_fault("newsapi", "nan_records")


def test_cut_connection_announces_the_whole_body_and_drops_the_connection(
    fake: FakeProviderServer, http: httpx.Client
) -> None:
    fake.set_fault("binance", "cut_connection", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        get_ok(http, "binance")
    assert get_ok(http, "binance").status_code == 200


def test_a_random_fault_rate_fails_about_that_share_with_the_kinds_asked_for(fake: FakeProviderServer) -> None:
    fake.set_fault_rate(0.3, seed=7)
    with httpx.Client(base_url=fake.url, timeout=5.0) as client:
        statuses = [get_ok(client, "coingecko").status_code for _ in range(300)]
    faults = [r["fault"] for r in fake.requests("coingecko")]
    share = sum(f is not None for f in faults) / len(faults)
    assert 0.2 < share < 0.4
    assert {f for f in faults if f} == {"status_429", "status_500", "truncated_json", "nan_records"}
    assert statuses.count(429) and statuses.count(500)


def test_the_same_seed_draws_the_same_faults(fake: FakeProviderServer, http: httpx.Client) -> None:
    def draw() -> list[str | None]:
        fake.clear_requests()
        fake.set_fault_rate(0.5, seed=11, kinds=["status_500", "status_503"], providers=["binance"])
        for _ in range(40):
            get_ok(http, "binance")
            get_ok(http, "coingecko")
        return [r["fault"] for r in fake.requests()]

    first = draw()
    assert first == draw()
    assert all(f is None for f, r in zip(first, fake.requests(), strict=True) if r["provider"] == "coingecko")
    fake.clear_faults()  # stops the random faults too
    assert get_ok(http, "binance").status_code == 200


def test_the_fault_rate_can_be_set_over_http(fake: FakeProviderServer, http: httpx.Client) -> None:
    set_rate = http.post("/_control/fault-rate", json={"rate": 1.0, "kinds": ["status_503"], "seed": 1})
    assert set_rate.json()["fault_rate"]["rate"] == 1.0
    assert get_ok(http, "newsapi").status_code == 503
    assert http.post("/_control/fault-rate", json={"rate": 2}).status_code == 400
    assert http.post("/_control/fault-rate", json={"rate": 0.5, "kinds": ["hang"]}).status_code == 400
    assert http.delete("/_control/fault-rate").json()["fault_rate"]["rate"] == 0.0
    assert get_ok(http, "newsapi").status_code == 200


def test_coinmarketcap_can_refuse_a_whole_batch_for_one_unknown_symbol() -> None:
    with FakeProviderServer(coinmarketcap_skip_invalid=False) as fake, httpx.Client(base_url=fake.url) as client:
        params = {"symbol": "BTC,ZZZQ,ETH", "skip_invalid": "true"}
        response = client.get("/coinmarketcap/v1/cryptocurrency/quotes/latest", params=params)
    assert response.status_code == 400
    assert 'Invalid value for "symbol"' in response.json()["status"]["error_message"]


def test_unknown_symbols_can_be_configured_over_http(http: httpx.Client) -> None:
    assert http.post("/_control/unknown", json={"symbols": ["ETH"]}).status_code == 200
    # Configuring a base asset hides it on every provider's own identifier.
    assert http.get("/binance/api/v3/ticker/price", params={"symbol": "ETHUSDT"}).json()["code"] == -1121
    cg = http.get("/coingecko/api/v3/simple/price", params={"ids": "ethereum,bitcoin", "vs_currencies": "usd"})
    assert list(cg.json()) == ["bitcoin"]
    http.delete("/_control/unknown")
    assert http.get("/binance/api/v3/ticker/price", params={"symbol": "ETHUSDT"}).status_code == 200


# --- request log and keys ----------------------------------------------------------------------


def test_request_log_counts_per_provider_and_masks_secrets(fake: FakeProviderServer, http: httpx.Client) -> None:
    for _ in range(3):
        get_ok(http, "binance")
    http.get("/alphavantage/query", params={"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": "s3cret"})
    http.get("/yahoo/v7/finance/quote", params={"symbols": "AAPL", "crumb": "crumb-value"})
    http.get("/_control/faults")  # control traffic is not logged

    assert len(fake.requests()) == 5
    assert len(fake.requests("binance")) == 3
    av = fake.requests("alphavantage")[0]
    assert av["query"] == "function=GLOBAL_QUOTE&symbol=IBM&apikey=***"
    assert "crumb-value" not in json.dumps(fake.requests())
    assert av["path"] == "/alphavantage/query" and av["method"] == "GET" and av["status"] == 200

    over_http = http.get("/_control/requests", params={"provider": "binance"}).json()
    assert over_http["count"] == 3
    http.delete("/_control/requests")
    assert fake.requests() == []


def test_request_log_records_faults_with_their_status(fake: FakeProviderServer, http: httpx.Client) -> None:
    fake.set_fault("coinmarketcap", "status_429", count=1)
    get_ok(http, "coinmarketcap")
    get_ok(http, "coinmarketcap")
    entries = fake.requests("coinmarketcap")
    assert [(e["status"], e["fault"]) for e in entries] == [(429, "status_429"), (200, None)]


def test_request_log_is_appended_to_a_jsonl_file(tmp_path: Path) -> None:
    log_file = tmp_path / "nested" / "requests.jsonl"
    with FakeProviderServer(log_file=log_file) as fake, httpx.Client(base_url=fake.url) as client:
        get_ok(client, "binance")
        client.get("/newsapi/v2/everything", params={"q": "btc", "apiKey": "hide-me"})
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["provider"] for line in lines] == ["binance", "newsapi"]
    assert "hide-me" not in log_file.read_text()


@pytest.fixture
def keyed() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(now=FROZEN_NOW, keys=KEYS) as fake:
        yield fake


@pytest.mark.parametrize(
    "provider,path,params,good,wrong",
    [
        ("coingecko", "/api/v3/ping", {}, {"x-cg-demo-api-key": "cg-key"}, {"x-cg-demo-api-key": "nope"}),
        (
            "coinmarketcap",
            "/v1/cryptocurrency/map",
            {},
            {"X-CMC_PRO_API_KEY": "cmc-key"},
            {"X-CMC_PRO_API_KEY": "x"},
        ),
        ("newsapi", "/v2/everything", {"q": "btc"}, {"X-Api-Key": "news-key"}, {"X-Api-Key": "x"}),
    ],
)
def test_configured_keys_must_arrive_in_the_header(
    keyed: FakeProviderServer,
    provider: str,
    path: str,
    params: dict[str, str],
    good: dict[str, str],
    wrong: dict[str, str],
) -> None:
    url = keyed.base_url(provider) + path
    assert httpx.get(url, params=params, headers=good).status_code == 200
    assert httpx.get(url, params=params, headers=wrong).status_code == 401
    assert httpx.get(url, params=params).status_code == 401
    query_key = {"coingecko": "x_cg_demo_api_key", "coinmarketcap": "CMC_PRO_API_KEY", "newsapi": "apiKey"}[provider]
    assert httpx.get(url, params={**params, query_key: KEYS[provider]}).status_code == 401
    assert [e["key_source"] for e in keyed.requests(provider)] == ["header", "header", None, "query"]


def test_configured_alphavantage_key_is_checked_in_the_query(keyed: FakeProviderServer) -> None:
    url = keyed.base_url("alphavantage") + "/query"
    params = {"function": "GLOBAL_QUOTE", "symbol": "IBM"}
    assert "Global Quote" in httpx.get(url, params={**params, "apikey": "av-key"}).json()
    assert "Error Message" in httpx.get(url, params={**params, "apikey": "wrong"}).json()
    assert "Error Message" in httpx.get(url, params=params).json()


def test_missing_cmc_key_is_1002_and_wrong_key_is_1001(keyed: FakeProviderServer) -> None:
    url = keyed.base_url("coinmarketcap") + "/v1/cryptocurrency/quotes/latest?symbol=BTC"
    assert httpx.get(url).json()["status"]["error_code"] == 1002
    assert httpx.get(url, headers={"X-CMC_PRO_API_KEY": "nope"}).json()["status"]["error_code"] == 1001


def test_keys_are_refused_for_keyless_providers() -> None:
    with pytest.raises(ValueError, match="binance"):
        FakeProviderServer(keys={"binance": "x"})


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_prints_its_url_and_logs_requests_to_a_file(tmp_path: Path) -> None:
    log_file = tmp_path / "fake_requests.jsonl"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.fake_provider", "--port", "0", "--log-file", str(log_file)],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/binance/api/v3/ping", timeout=5).json() == {}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
    assert json.loads(log_file.read_text().splitlines()[0])["path"] == "/binance/api/v3/ping"
