"""YahooClient against a MockTransport fake of the cookie host, getcrumb, v7 quote and v8 chart."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    TransientProviderError,
    TruncatedReplyError,
    UnknownSymbolError,
)
from backend.providers.yahoo import YahooClient, _to_quote
from tests.unit.providers.fakes import FIXED_NOW, FakeApi, fixture_json, json_response

QUOTES = {row["symbol"]: row for row in fixture_json("yahoo", "quote_ok.json")["quoteResponse"]["result"]}
CRUMB = "Xa1bC2dE3fG"


def cookie_home(request: httpx.Request) -> httpx.Response:
    """Like fc.yahoo.com: a 404 that still sets the session cookie."""
    return httpx.Response(404, text="Not Found", headers={"set-cookie": "A3=d=AQABBx&S=AQAAA; Domain=.test; Path=/"})


def getcrumb(request: httpx.Request) -> httpx.Response:
    if request.headers.get("cookie") != "A3=d=AQABBx&S=AQAAA":
        return httpx.Response(401, text="")
    return httpx.Response(200, text=CRUMB, headers={"content-type": "text/plain"})


def quote(request: httpx.Request) -> httpx.Response:
    """Known tickers answer; unknown ones are silently omitted, as Yahoo does."""
    if request.url.params.get("crumb") != CRUMB or "A3=" not in request.headers.get("cookie", ""):
        return json_response("yahoo", "invalid_crumb.json", 401)
    symbols = request.url.params["symbols"].split(",")
    rows = [QUOTES.get(s) or {**QUOTES["MSFT"], "symbol": s} for s in symbols if not s.startswith("NOPE")]
    return httpx.Response(200, json={"quoteResponse": {"result": rows, "error": None}})


def chart(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/NOPE"):
        return json_response("yahoo", "chart_not_found.json", 404)
    return json_response("yahoo", "chart_ok.json")


@pytest.fixture
def yahoo_fake(fake: FakeApi) -> FakeApi:
    fake.route("/", cookie_home)
    fake.route("/v1/test/getcrumb", getcrumb)
    fake.route("/v7/finance/quote", quote)
    fake.route("/v8/finance/chart/AAPL", chart)
    fake.route("/v8/finance/chart/NOPE", chart)
    return fake


@pytest.fixture
def yahoo(yahoo_fake: FakeApi, clock) -> YahooClient:
    return YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock)


def test_it_fetches_cookie_and_crumb_then_parses_quotes(yahoo: YahooClient, yahoo_fake: FakeApi) -> None:
    batch = yahoo.fetch_quotes(["AAPL", "MSFT"])
    aapl, msft = batch.quotes
    assert aapl.symbol == "AAPL"
    assert aapl.price == Decimal("237.33")
    assert aapl.timestamp == datetime.fromtimestamp(1732903200, tz=UTC)
    assert aapl.change_24h_pct == Decimal("1.02")
    assert msft.change_24h_pct == Decimal("-0.35")
    assert yahoo_fake.paths() == ["/", "/v1/test/getcrumb", "/v7/finance/quote"]
    assert yahoo_fake.requests[2].url.params["symbols"] == "AAPL,MSFT"
    assert "Mozilla" in yahoo_fake.requests[1].headers["user-agent"]


def test_it_reuses_the_crumb_across_calls(yahoo: YahooClient, yahoo_fake: FakeApi) -> None:
    yahoo.fetch_quotes(["AAPL"])
    yahoo.fetch_quotes(["MSFT"])
    assert yahoo_fake.paths().count("/v1/test/getcrumb") == 1


def test_it_refreshes_an_expired_crumb_once(yahoo: YahooClient, yahoo_fake: FakeApi) -> None:
    yahoo.fetch_quotes(["AAPL"])
    yahoo._crumb = "expired"  # Yahoo rotated it
    batch = yahoo.fetch_quotes(["AAPL"])
    assert batch.quotes[0].symbol == "AAPL"
    assert yahoo_fake.paths().count("/v1/test/getcrumb") == 2


def test_it_raises_invalid_key_when_a_fresh_crumb_is_still_refused(yahoo_fake: FakeApi, clock) -> None:
    yahoo_fake.route("/v7/finance/quote", lambda request: json_response("yahoo", "invalid_crumb.json", 401))
    client = YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock)
    with pytest.raises(InvalidKeyError) as info:
        client.fetch_quotes(["AAPL"])
    assert CRUMB not in str(info.value)
    assert yahoo_fake.paths().count("/v7/finance/quote") == 2


def test_a_throttled_getcrumb_is_transient_not_a_crumb(yahoo_fake: FakeApi, clock) -> None:
    yahoo_fake.route("/v1/test/getcrumb", lambda request: httpx.Response(200, text="Edge: Too Many Requests"))
    with pytest.raises(TransientProviderError):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL"])
    assert "/v7/finance/quote" not in yahoo_fake.paths()


def test_an_html_getcrumb_is_malformed(yahoo_fake: FakeApi, clock) -> None:
    yahoo_fake.route("/v1/test/getcrumb", lambda request: httpx.Response(200, text="<html>consent</html>"))
    with pytest.raises(MalformedReplyError):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL"])


def test_it_rejects_tickers_yahoo_omits_and_keeps_the_rest(yahoo: YahooClient) -> None:
    batch = yahoo.fetch_quotes(["AAPL", "NOPEX", "MSFT"])
    assert [q.symbol for q in batch.quotes] == ["AAPL", "MSFT"]
    assert [r.symbol for r in batch.rejected] == ["NOPEX"]


@pytest.mark.parametrize("n", [1, 50, 51, 120])
def test_it_splits_tickers_into_ceil_n_over_limit_requests(yahoo: YahooClient, yahoo_fake: FakeApi, n: int) -> None:
    symbols = [f"T{i}" for i in range(n)]
    batch = yahoo.fetch_quotes(symbols)
    assert yahoo_fake.paths().count("/v7/finance/quote") == math.ceil(n / YahooClient.batch_limit)
    assert len(batch.quotes) == n


def test_a_plain_text_429_is_transient_with_retry_after(yahoo_fake: FakeApi, clock) -> None:
    yahoo_fake.route(
        "/v7/finance/quote",
        lambda request: httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "5"}),
    )
    with pytest.raises(TransientProviderError) as info:
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL"])
    assert info.value.retry_after == 5.0


def test_a_truncated_quote_body_is_transient(yahoo_fake: FakeApi, clock) -> None:
    body = b'{"quoteResponse": {"result": [{"symbol": "AA'
    yahoo_fake.route("/v7/finance/quote", lambda request: httpx.Response(200, content=body))
    with pytest.raises(TruncatedReplyError):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL"])


@pytest.mark.parametrize("body", [b"<html></html>", b'{"quoteResponse": Infinity}'])
def test_it_raises_malformed_on_broken_quote_bodies(yahoo_fake: FakeApi, clock, body: bytes) -> None:
    yahoo_fake.route("/v7/finance/quote", lambda request: httpx.Response(200, content=body))
    with pytest.raises(MalformedReplyError):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL"])


def test_a_bare_nan_refuses_only_the_quote_that_carries_it(yahoo_fake: FakeApi, clock) -> None:
    body = (
        '{"quoteResponse": {"result": ['
        '{"symbol": "AAPL", "regularMarketPrice": NaN, "regularMarketTime": 1732903200},'
        '{"symbol": "MSFT", "regularMarketPrice": 423.46, "regularMarketTime": 1732903200}]}}'
    )
    yahoo_fake.route("/v7/finance/quote", lambda request: httpx.Response(200, content=body.encode()))
    batch = YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL", "MSFT"])
    assert [q.symbol for q in batch.quotes] == ["MSFT"]
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("AAPL", False)]
    assert "non-finite" in batch.rejected[0].reason


def test_it_rejects_a_quote_with_a_string_nan_price_but_keeps_the_rest(yahoo_fake: FakeApi, clock) -> None:
    rows = [{**QUOTES["AAPL"], "regularMarketPrice": "NaN"}, QUOTES["MSFT"]]
    yahoo_fake.route("/v7/finance/quote", lambda request: httpx.Response(200, json={"quoteResponse": {"result": rows}}))
    batch = YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_quotes(["AAPL", "MSFT"])
    assert [q.symbol for q in batch.quotes] == ["MSFT"]
    assert batch.rejected[0].symbol == "AAPL"


def test_it_parses_chart_bars_floored_to_utc_days(yahoo: YahooClient, yahoo_fake: FakeApi) -> None:
    bars = yahoo.fetch_bars("AAPL", interval="1d", limit=10)
    assert [b.timestamp for b in bars] == [
        datetime(2024, 11, 25, tzinfo=UTC),
        datetime(2024, 11, 26, tzinfo=UTC),
        datetime(2024, 11, 27, tzinfo=UTC),
        datetime(2024, 11, 29, tzinfo=UTC),
    ]
    assert bars[-1].close == Decimal("237.33")
    assert bars[0].volume == Decimal(90152800)
    params = yahoo_fake.requests[0].url.params
    assert params["interval"] == "1d"
    assert int(params["period2"]) == int(FIXED_NOW.timestamp())
    assert int(params["period1"]) < int(params["period2"])
    assert "crumb" not in params


def test_it_skips_bars_with_null_fields(yahoo_fake: FakeApi, clock) -> None:
    raw = fixture_json("yahoo", "chart_ok.json")
    raw["chart"]["result"][0]["indicators"]["quote"][0]["close"][1] = None
    yahoo_fake.route("/v8/finance/chart/AAPL", lambda request: httpx.Response(200, json=raw))
    bars = YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_bars("AAPL")
    assert len(bars) == 3
    assert datetime(2024, 11, 26, tzinfo=UTC) not in [b.timestamp for b in bars]


def test_a_window_without_trades_is_no_bars_not_a_malformed_reply(yahoo_fake: FakeApi, clock) -> None:
    """A 1-minute chart over a weekend: Yahoo leaves out ``timestamp`` and sends ``"quote": [{}]``."""
    yahoo_fake.route("/v8/finance/chart/AAPL", lambda request: json_response("yahoo", "chart_no_trades.json"))
    client = YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock)
    assert client.fetch_bars("AAPL", interval="1m", limit=60) == []


@pytest.mark.parametrize("quote", [None, [], "none"])
def test_a_chart_quote_that_is_not_an_object_is_malformed(yahoo_fake: FakeApi, clock, quote: object) -> None:
    raw = fixture_json("yahoo", "chart_no_trades.json")
    raw["chart"]["result"][0]["indicators"]["quote"] = [quote]
    yahoo_fake.route("/v8/finance/chart/AAPL", lambda request: httpx.Response(200, json=raw))
    with pytest.raises(MalformedReplyError):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_bars("AAPL", interval="1m")


def test_it_maps_a_chart_not_found_to_unknown_symbol(yahoo: YahooClient) -> None:
    with pytest.raises(UnknownSymbolError, match="delisted"):
        yahoo.fetch_bars("NOPE")


def test_a_chart_range_error_is_permanent(yahoo_fake: FakeApi, clock) -> None:
    body = {
        "chart": {
            "result": None,
            "error": {"code": "Unprocessable Entity", "description": "1m data not available"},
        }
    }
    yahoo_fake.route("/v8/finance/chart/AAPL", lambda request: httpx.Response(422, json=body))
    with pytest.raises(PermanentProviderError, match="1m data"):
        YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_bars("AAPL", interval="1m")


def test_index_symbols_are_percent_encoded_in_the_chart_path(yahoo_fake: FakeApi, clock) -> None:
    yahoo_fake.route("/v8/finance/chart/^GSPC", chart)
    YahooClient(yahoo_fake.client(), base_url=yahoo_fake.base_url, clock=clock).fetch_bars("^GSPC")
    assert yahoo_fake.requests[-1].url.raw_path.startswith(b"/v8/finance/chart/%5EGSPC")


def test_to_quote_is_pure() -> None:
    assert _to_quote(QUOTES["AAPL"], now=FIXED_NOW).currency == "USD"
