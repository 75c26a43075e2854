"""BinanceClient against a MockTransport fake of /api/v3/ticker/24hr and /api/v3/klines."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.binance import BinanceClient, _to_quote
from backend.providers.errors import (
    MalformedReplyError,
    PermanentProviderError,
    ProviderPausedError,
    TransientProviderError,
    TruncatedReplyError,
    UnknownSymbolError,
)
from backend.providers.pauses import MemoryPauseStore, PauseBoard
from backend.providers.validation import InvalidRecordError
from tests.unit.providers.fakes import FIXED_NOW, FakeApi, fixture_json, fixture_text, json_response

TICKERS = {row["symbol"]: row for row in fixture_json("binance", "ticker_24hr_ok.json")}


def ticker_row(symbol: str) -> dict[str, object]:
    row = dict(TICKERS["BTCUSDT"])
    row["symbol"] = symbol
    return row


def ticker_24hr(request: httpx.Request) -> httpx.Response:
    """Serves known pairs; like the real API, one unknown pair fails the whole request with -1121."""
    if "symbol" in request.url.params:
        requested = [request.url.params["symbol"]]
    else:
        requested = json.loads(request.url.params["symbols"])
    if any(s.startswith("NOPE") for s in requested):
        return json_response("binance", "invalid_symbol.json", status=400)
    rows = [TICKERS.get(s) or ticker_row(s) for s in requested]
    return httpx.Response(200, json=rows if "symbols" in request.url.params else rows[0])


def klines(request: httpx.Request) -> httpx.Response:
    return json_response("binance", "klines_1h_ok.json")


@pytest.fixture
def binance(fake: FakeApi, clock) -> BinanceClient:
    fake.route("/api/v3/ticker/24hr", ticker_24hr)
    fake.route("/api/v3/klines", klines)
    return BinanceClient(fake.client(), base_url=fake.base_url, clock=clock)


def test_it_parses_24h_tickers_into_decimal_quotes(binance: BinanceClient, fake: FakeApi) -> None:
    batch = binance.fetch_quotes(["BTCUSDT", "ETHUSDT"])
    btc, eth = batch.quotes
    assert btc.symbol == "BTCUSDT"
    assert btc.price == Decimal("96512.34000000")
    assert btc.timestamp == datetime(2024, 11, 29, 13, 20, 0, 123000, tzinfo=UTC)
    assert btc.change_24h_pct == Decimal("1.270")
    assert btc.volume_24h == Decimal("1748123456.78901234")
    assert btc.currency == "USDT"
    assert btc.source == "binance"
    assert eth.change_24h_pct == Decimal("-0.441")
    assert batch.rejected == ()
    assert fake.requests[0].url.params["symbols"] == '["BTCUSDT","ETHUSDT"]'


@pytest.mark.parametrize("n", [1, 19, 20, 21, 45, 100])
def test_it_splits_quotes_into_ceil_n_over_limit_requests(binance: BinanceClient, fake: FakeApi, n: int) -> None:
    symbols = [f"C{i}USDT" for i in range(n)]
    batch = binance.fetch_quotes(symbols)
    assert len(fake.requests) == math.ceil(n / BinanceClient.batch_limit)
    assert [q.symbol for q in batch.quotes] == symbols
    assert all(len(json.loads(r.url.params["symbols"])) <= 20 for r in fake.requests)


def test_it_isolates_an_unknown_pair_and_keeps_the_rest_of_the_batch(binance: BinanceClient, fake: FakeApi) -> None:
    batch = binance.fetch_quotes(["BTCUSDT", "NOPEUSDT", "ETHUSDT"])
    assert sorted(q.symbol for q in batch.quotes) == ["BTCUSDT", "ETHUSDT"]
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("NOPEUSDT", True)]
    assert "unknown symbol" in batch.rejected[0].reason
    # the batch fails; [BTC] is clean, so [NOPE, ETH] must hold the bad pair and is split unasked
    assert len(fake.requests) == 4


def test_it_rejects_pairs_outside_the_pattern_without_asking(binance: BinanceClient, fake: FakeApi) -> None:
    batch = binance.fetch_quotes(["btcusdt", "BTC/USDT"])
    assert batch.quotes == ()
    assert len(batch.rejected) == 2
    assert fake.requests == []


def test_it_rejects_nan_prices_but_keeps_the_rest_of_the_batch(fake: FakeApi, clock) -> None:
    body = fixture_text("binance", "ticker_24hr_ok.json").replace('"lastPrice": "3587.12000000"', '"lastPrice": "NaN"')
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, content=body.encode()))
    batch = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT", "ETHUSDT"])
    assert [q.symbol for q in batch.quotes] == ["BTCUSDT"]
    assert batch.rejected[0].symbol == "ETHUSDT"
    assert "lastPrice" in batch.rejected[0].reason and "NaN" in batch.rejected[0].reason


def test_it_rejects_a_pair_missing_from_the_reply(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, json=[TICKERS["BTCUSDT"]]))
    batch = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT", "ETHUSDT"])
    assert [r.symbol for r in batch.rejected] == ["ETHUSDT"]


def test_it_raises_transient_with_retry_after_when_throttled(fake: FakeApi, clock) -> None:
    fake.route(
        "/api/v3/ticker/24hr",
        lambda request: json_response("binance", "throttled.json", status=429, **{"Retry-After": "30"}),
    )
    with pytest.raises(TransientProviderError) as info:
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT"])
    assert info.value.retry_after == 30.0


def test_it_treats_an_ip_ban_418_as_transient(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/klines", lambda request: httpx.Response(418, json={}, headers={"Retry-After": "120"}))
    with pytest.raises(TransientProviderError) as info:
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_bars("BTCUSDT")
    assert info.value.retry_after == 120.0


def test_it_treats_a_waf_403_as_transient_not_as_a_bad_key(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(403, text="Forbidden"))
    with pytest.raises(TransientProviderError, match="WAF"):
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT"])


def test_a_truncated_body_is_transient(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, content=b'[{"symbol": "BTCUSDT", "lastP'))
    with pytest.raises(TruncatedReplyError):
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT"])


def test_a_bare_nan_refuses_only_the_ticker_that_carries_it(fake: FakeApi, clock) -> None:
    body = fixture_text("binance", "ticker_24hr_ok.json").replace('"lastPrice": "3587.12000000"', '"lastPrice": NaN')
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, content=body.encode()))
    batch = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT", "ETHUSDT"])
    assert [q.symbol for q in batch.quotes] == ["BTCUSDT"]
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("ETHUSDT", False)]
    assert "non-finite" in batch.rejected[0].reason


@pytest.mark.parametrize("body", [b"<html><body>Access denied</body></html>", b'{"a": 1,, "b": 2}'])
def test_it_raises_malformed_on_broken_bodies(fake: FakeApi, clock, body: bytes) -> None:
    fake.route("/api/v3/ticker/24hr", lambda request: httpx.Response(200, content=body))
    with pytest.raises(MalformedReplyError):
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_quotes(["BTCUSDT"])


def test_it_parses_klines_into_utc_bars(binance: BinanceClient, fake: FakeApi) -> None:
    bars = binance.fetch_bars("BTCUSDT", interval="1h", limit=2)
    assert [b.timestamp for b in bars] == [
        datetime(2024, 11, 29, 0, 0, tzinfo=UTC),
        datetime(2024, 11, 29, 1, 0, tzinfo=UTC),
    ]
    assert bars[0].open == Decimal("95301.84")
    assert bars[0].volume == Decimal("812.40112")
    assert bars[0].interval == "1h"
    assert dict(fake.requests[0].url.params) == {"symbol": "BTCUSDT", "interval": "1h", "limit": "2"}


def test_it_drops_a_kline_with_high_below_low_and_keeps_the_others(fake: FakeApi, clock) -> None:
    rows = fixture_json("binance", "klines_1h_ok.json")
    rows[0][2] = "1.00"  # high below low
    fake.route("/api/v3/klines", lambda request: httpx.Response(200, json=rows))
    bars = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_bars("BTCUSDT", interval="1h")
    assert len(bars) == 1
    assert bars[0].timestamp.hour == 1


def test_it_raises_unknown_symbol_for_klines_of_an_unknown_pair(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/klines", lambda request: json_response("binance", "invalid_symbol.json", status=400))
    with pytest.raises(UnknownSymbolError):
        BinanceClient(fake.client(), base_url=fake.base_url, clock=clock).fetch_bars("NOPEUSDT")


def test_it_refuses_unsupported_intervals_and_limits_before_any_request(binance: BinanceClient, fake: FakeApi) -> None:
    with pytest.raises(PermanentProviderError):
        binance.fetch_bars("BTCUSDT", interval="7d")
    with pytest.raises(PermanentProviderError):
        binance.fetch_bars("BTCUSDT", limit=5000)
    assert fake.requests == []


def test_it_works_under_a_base_url_with_a_path_prefix(clock) -> None:
    fake = FakeApi(host="127.0.0.1:8765", prefix="/binance")
    fake.route("/api/v3/ticker/24hr", ticker_24hr)
    client = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock)
    assert client.fetch_quotes(["BTCUSDT"]).quotes[0].symbol == "BTCUSDT"
    assert fake.paths() == ["/binance/api/v3/ticker/24hr"]


def test_to_quote_is_pure_and_rejects_a_pair_with_an_unknown_quote_asset() -> None:
    assert _to_quote(TICKERS["ETHUSDT"], now=FIXED_NOW).price == Decimal("3587.12000000")
    with pytest.raises(InvalidRecordError, match="quote asset"):
        _to_quote(ticker_row("ABCXYZ"), now=FIXED_NOW)


class CountingPauses(MemoryPauseStore):
    """A pause store that counts how often it is read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def until(self, provider: str) -> float | None:
        self.reads += 1
        return super().until(provider)


def test_a_batched_call_checks_the_pause_once_not_per_request(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/ticker/24hr", ticker_24hr)
    store = CountingPauses()
    client = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock, pauses=PauseBoard(store))

    batch = client.fetch_quotes([f"C{n:03d}USDT" for n in range(60)])  # three requests of 20

    assert len(batch.quotes) == 60
    assert len(fake.requests) == 3
    assert store.reads == 1


def test_a_paused_provider_gets_no_request_of_a_batched_call(fake: FakeApi, clock) -> None:
    fake.route("/api/v3/ticker/24hr", ticker_24hr)
    board = PauseBoard(MemoryPauseStore())
    board.pause("binance", 60)
    client = BinanceClient(fake.client(), base_url=fake.base_url, clock=clock, pauses=board)

    with pytest.raises(ProviderPausedError):
        client.fetch_quotes(["BTCUSDT", "ETHUSDT"])
    assert fake.requests == []
