"""AlphaVantageClient against a MockTransport fake of /query (errors arrive as HTTP 200 bodies)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.alphavantage import AlphaVantageClient, _to_quote
from backend.providers.errors import (
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderThrottledError,
    TransientProviderError,
    TruncatedReplyError,
    UnknownSymbolError,
)
from tests.unit.providers.fakes import FIXED_NOW, SECRET, FakeApi, fixture_json, json_response


def query(request: httpx.Request) -> httpx.Response:
    """One endpoint, dispatched on ``function`` like the real API; NOPE is unknown."""
    params = request.url.params
    if params.get("apikey") != SECRET:
        return json_response("alphavantage", "error_bad_key.json")
    if params["function"] == "GLOBAL_QUOTE":
        if params["symbol"] == "NOPE":
            return json_response("alphavantage", "global_quote_empty.json")
        body = fixture_json("alphavantage", "global_quote_ok.json")
        body["Global Quote"]["01. symbol"] = params["symbol"]
        return httpx.Response(200, json=body)
    if params["function"] == "TIME_SERIES_DAILY":
        if params["symbol"] == "NOPE":
            return json_response("alphavantage", "error_invalid_call.json")
        return json_response("alphavantage", "time_series_daily_ok.json")
    return httpx.Response(400)


@pytest.fixture
def av(fake: FakeApi, clock) -> AlphaVantageClient:
    fake.route("/query", query)
    return AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)


def test_it_parses_a_global_quote(av: AlphaVantageClient, fake: FakeApi) -> None:
    batch = av.fetch_quotes(["IBM"])
    (ibm,) = batch.quotes
    assert ibm.symbol == "IBM"
    assert ibm.price == Decimal("229.4100")
    assert ibm.change_24h_pct == Decimal("1.0394")
    assert ibm.volume_24h == Decimal("2851432")
    # 2026-11-27, the day after Thanksgiving, closes early: 13:00 New York (EST) is 18:00 UTC
    assert ibm.timestamp == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert fake.requests[0].url.params["function"] == "GLOBAL_QUOTE"


def test_it_sends_one_request_per_symbol(av: AlphaVantageClient, fake: FakeApi) -> None:
    batch = av.fetch_quotes(["IBM", "MSFT", "AAPL"])
    assert len(fake.requests) == 3
    assert [q.symbol for q in batch.quotes] == ["IBM", "MSFT", "AAPL"]


def test_an_empty_global_quote_rejects_that_symbol_and_keeps_the_rest(av: AlphaVantageClient) -> None:
    batch = av.fetch_quotes(["IBM", "NOPE", "MSFT"])
    assert [q.symbol for q in batch.quotes] == ["IBM", "MSFT"]
    assert [r.symbol for r in batch.rejected] == ["NOPE"]
    assert "unknown symbol" in batch.rejected[0].reason


def test_a_trading_day_still_in_session_is_stamped_now_not_in_the_future(fake: FakeApi) -> None:
    fake.route("/query", query)
    session_now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 in New York
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=lambda: session_now)
    assert client.fetch_quotes(["IBM"]).quotes[0].timestamp == session_now


# FIXED_NOW is 12:00 UTC, so the daily quota resets in twelve hours.
@pytest.mark.parametrize(("fixture", "retry_after"), [("note.json", 60.0), ("information.json", 12 * 3600.0)])
def test_http_200_throttle_bodies_ask_for_a_pause(fake: FakeApi, clock, fixture: str, retry_after: float) -> None:
    fake.route("/query", lambda request: json_response("alphavantage", fixture))
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    with pytest.raises(ProviderThrottledError) as info:
        client.fetch_quotes(["IBM"])
    assert info.value.retry_after == retry_after


def test_a_premium_only_information_body_is_permanent_not_a_pause(fake: FakeApi, clock) -> None:
    body = {"Information": "Thank you for using Alpha Vantage! This is a premium endpoint. Subscribe to unlock it."}
    fake.route("/query", lambda request: httpx.Response(200, json=body))
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    with pytest.raises(PermanentProviderError, match="premium"):
        client.fetch_bars("IBM")


def test_a_throttle_mid_call_keeps_what_was_served_and_fails_the_rest_without_asking(fake: FakeApi, clock) -> None:
    def second_is_throttled(request: httpx.Request) -> httpx.Response:
        if len(fake.requests) >= 2:
            return json_response("alphavantage", "note.json")
        return query(request)

    fake.route("/query", second_is_throttled)
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    batch = client.fetch_quotes(["IBM", "MSFT", "AAPL", "TSLA"])
    assert [q.symbol for q in batch.quotes] == ["IBM"]
    assert [f.symbol for f in batch.failed] == ["MSFT", "AAPL", "TSLA"]
    assert {f.retry_after for f in batch.failed} == {60.0}
    assert len(fake.requests) == 2  # nothing sent after the throttle


def test_a_bad_key_is_invalid_key_and_the_key_never_reaches_the_message(fake: FakeApi, clock) -> None:
    fake.route("/query", query)
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key="wrong-" + SECRET, clock=clock)
    with pytest.raises(InvalidKeyError) as info:
        client.fetch_quotes(["IBM"])
    assert SECRET not in str(info.value)


def test_a_missing_key_fails_before_any_request(fake: FakeApi, clock) -> None:
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, clock=clock)
    with pytest.raises(InvalidKeyError):
        client.fetch_bars("IBM")
    assert fake.requests == []


def test_a_server_error_message_carries_the_scrubbed_url_only(fake: FakeApi, clock) -> None:
    fake.route("/query", lambda request: httpx.Response(503, text="Service Unavailable"))
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    with pytest.raises(TransientProviderError) as info:
        client.fetch_quotes(["IBM"])
    assert SECRET not in str(info.value)
    assert "apikey=***" in str(info.value)
    assert fake.requests[0].url.params["apikey"] == SECRET  # the API requires it in the query


def test_a_truncated_body_is_transient(fake: FakeApi, clock) -> None:
    fake.route("/query", lambda request: httpx.Response(200, content=b'{"Global Quote": {"05. price": "229.4'))
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    with pytest.raises(TruncatedReplyError):
        client.fetch_quotes(["IBM"])


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"Global Quote": NaN}'])
def test_broken_bodies_are_malformed(fake: FakeApi, clock, body: bytes) -> None:
    fake.route("/query", lambda request: httpx.Response(200, content=body))
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    with pytest.raises(MalformedReplyError):
        client.fetch_quotes(["IBM"])


def test_a_string_nan_price_rejects_only_that_symbol(fake: FakeApi, clock) -> None:
    def nan_for_ibm(request: httpx.Request) -> httpx.Response:
        body = fixture_json("alphavantage", "global_quote_ok.json")
        body["Global Quote"]["01. symbol"] = request.url.params["symbol"]
        if request.url.params["symbol"] == "IBM":
            body["Global Quote"]["05. price"] = "NaN"
        return httpx.Response(200, json=body)

    fake.route("/query", nan_for_ibm)
    client = AlphaVantageClient(fake.client(), base_url=fake.base_url, api_key=SECRET, clock=clock)
    batch = client.fetch_quotes(["IBM", "MSFT"])
    assert [q.symbol for q in batch.quotes] == ["MSFT"]
    assert batch.rejected[0].symbol == "IBM"


def test_it_parses_daily_bars_oldest_first_at_utc_midnight(av: AlphaVantageClient, fake: FakeApi) -> None:
    bars = av.fetch_bars("IBM", limit=10)
    assert [b.timestamp for b in bars] == [
        datetime(2026, 11, 26, tzinfo=UTC),
        datetime(2026, 11, 27, tzinfo=UTC),
    ]
    assert bars[-1].close == Decimal("229.4100")
    assert bars[-1].volume == Decimal("2851432")
    assert fake.requests[0].url.params["outputsize"] == "compact"


def test_more_than_100_bars_asks_for_the_full_series(av: AlphaVantageClient, fake: FakeApi) -> None:
    av.fetch_bars("IBM", limit=250)
    assert fake.requests[0].url.params["outputsize"] == "full"


def test_an_error_message_for_bars_is_unknown_symbol(av: AlphaVantageClient) -> None:
    with pytest.raises(UnknownSymbolError):
        av.fetch_bars("NOPE")


def test_only_daily_bars_are_supported(av: AlphaVantageClient, fake: FakeApi) -> None:
    with pytest.raises(PermanentProviderError):
        av.fetch_bars("IBM", interval="1h")
    assert fake.requests == []


def test_to_quote_refuses_a_reply_for_another_symbol() -> None:
    raw = fixture_json("alphavantage", "global_quote_ok.json")["Global Quote"]
    with pytest.raises(MalformedReplyError, match="not MSFT"):
        _to_quote(raw, symbol="MSFT", now=FIXED_NOW)
