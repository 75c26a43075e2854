"""The provider chain: failover in order, our symbols back, every unserved symbol explained."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from backend.providers.binance import BinanceClient
from backend.providers.breaker import OPEN, CircuitBreaker
from backend.providers.coingecko import CoinGeckoClient
from backend.providers.errors import (
    AllProvidersFailedError,
    InvalidKeyError,
    MalformedReplyError,
    PermanentProviderError,
    ProviderFailure,
    TransientProviderError,
    UnknownSymbolError,
)
from backend.providers.http import build_client
from backend.providers.models import Article, Bar, Failed, Quote, QuoteBatch, Rejected
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.ratelimit import RateLimiter, guard_client
from tests.unit.providers.fakes import FIXED_NOW, FakeApi, json_response

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BTC = Instrument("BTC", {"binance": "BTCUSDT", "coingecko": "bitcoin", "coinmarketcap": "BTC"})
ETH = Instrument("ETH", {"binance": "ETHUSDT", "coingecko": "ethereum", "coinmarketcap": "ETH"})
SOL = Instrument("SOL", {"coingecko": "solana", "coinmarketcap": "SOL"})  # not listed on Binance here


class FakeClient:
    """A provider that serves the ids it knows, rejects the rest, or fails the whole call."""

    def __init__(self, name: str, known: Sequence[str] = (), error: Exception | None = None) -> None:
        self.name = name
        self.known = set(known)
        self.error = error
        self.calls: list[list[str]] = []

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        self.calls.append(list(symbols))
        if self.error is not None:
            raise self.error
        quotes = [quote(s, self.name) for s in symbols if s in self.known]
        rejected = [Rejected(s, f"{self.name}: unknown symbol", unknown=True) for s in symbols if s not in self.known]
        return QuoteBatch(quotes=tuple(quotes), rejected=tuple(rejected))

    def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
        self.calls.append([symbol])
        if self.error is not None:
            raise self.error
        if symbol not in self.known:
            raise UnknownSymbolError(f"{self.name}: {symbol} unknown", provider=self.name)
        return [bar(symbol, self.name)]

    def fetch_articles(self, query: str, *, since: datetime | None = None, max_pages: int = 3) -> list[Article]:
        self.calls.append([query])
        if self.error is not None:
            raise self.error
        return [Article(url=f"https://news.test/{self.name}", title=query, published_at=NOW, source=self.name)]


def quote(symbol: str, source: str) -> Quote:
    return Quote(symbol=symbol, price=Decimal("1.5"), timestamp=NOW, source=source)


def bar(symbol: str, source: str) -> Bar:
    one = Decimal("1")
    return Bar(symbol, "1d", NOW, one, one, one, one, one, source)


def transient(provider: str, retry_after: float | None = None) -> TransientProviderError:
    return TransientProviderError(f"{provider}: HTTP 503", provider=provider, retry_after=retry_after)


def served(batch: QuoteBatch) -> dict[str, str]:
    return {q.symbol: q.source for q in batch.quotes}


# --- quotes ---------------------------------------------------------------------------------------


def test_quotes_come_back_under_our_symbols_with_the_serving_provider_as_source() -> None:
    binance = FakeClient("binance", ["BTCUSDT", "ETHUSDT"])
    chain = ProviderChain([binance, FakeClient("coingecko", ["bitcoin"])])

    batch = chain.fetch_quotes([BTC, ETH])

    assert served(batch) == {"BTC": "binance", "ETH": "binance"}
    assert binance.calls == [["BTCUSDT", "ETHUSDT"]]
    assert batch.rejected == ()


def test_a_transient_failure_of_the_first_provider_fails_over_to_the_next() -> None:
    binance = FakeClient("binance", error=transient("binance"))
    coingecko = FakeClient("coingecko", ["bitcoin", "ethereum"])
    batch = ProviderChain([binance, coingecko]).fetch_quotes([BTC, ETH])
    assert served(batch) == {"BTC": "coingecko", "ETH": "coingecko"}
    assert coingecko.calls == [["bitcoin", "ethereum"]]


@pytest.mark.parametrize("error", [InvalidKeyError("cmc: bad key"), MalformedReplyError("html page")])
def test_a_permanent_failure_of_the_whole_call_fails_over_and_is_reported(caplog, error: Exception) -> None:
    first = FakeClient("coinmarketcap", error=error)
    second = FakeClient("coingecko", ["bitcoin"])
    with caplog.at_level(logging.WARNING, logger="backend.providers.orchestrator"):
        batch = ProviderChain([first, second]).fetch_quotes([BTC])
    assert served(batch) == {"BTC": "coingecko"}
    assert any("coinmarketcap failed (permanent" in r.getMessage() for r in caplog.records)


def test_symbols_one_provider_rejects_are_asked_of_the_next() -> None:
    binance = FakeClient("binance", ["BTCUSDT"])
    coingecko = FakeClient("coingecko", ["ethereum"])
    batch = ProviderChain([binance, coingecko]).fetch_quotes([BTC, ETH])
    assert served(batch) == {"BTC": "binance", "ETH": "coingecko"}
    assert coingecko.calls == [["ethereum"]]


def test_instruments_a_provider_has_no_id_for_skip_it() -> None:
    binance = FakeClient("binance", ["BTCUSDT"])
    coingecko = FakeClient("coingecko", ["solana"])
    batch = ProviderChain([binance, coingecko]).fetch_quotes([BTC, SOL])
    assert binance.calls == [["BTCUSDT"]]
    assert served(batch) == {"BTC": "binance", "SOL": "coingecko"}


def test_what_no_provider_serves_because_of_a_transient_fault_is_failed_with_every_reason() -> None:
    chain = ProviderChain(
        [FakeClient("binance", ["BTCUSDT"]), FakeClient("coingecko", error=transient("coingecko", retry_after=9))],
    )
    batch = chain.fetch_quotes([BTC, ETH, Instrument("XYZ", {})])
    assert served(batch) == {"BTC": "binance"}
    assert [f.symbol for f in batch.failed] == ["ETH"]
    assert batch.failed[0].reason.startswith("binance: unknown symbol; ")
    assert "coingecko" in batch.failed[0].reason and "HTTP 503" in batch.failed[0].reason
    assert batch.failed[0].retry_after == 9
    reasons = {r.symbol: r for r in batch.rejected}
    assert set(reasons) == {"XYZ"}
    assert "no identifier" in reasons["XYZ"].reason and not reasons["XYZ"].unknown


def test_a_partly_served_call_names_every_provider_that_failed_for_the_rest() -> None:
    chain = ProviderChain(
        [FakeClient("binance", ["BTCUSDT"]), FakeClient("coingecko", error=transient("coingecko", retry_after=9))],
    )
    batch = chain.fetch_quotes([BTC, ETH])
    assert served(batch) == {"BTC": "binance"} and [f.symbol for f in batch.failed] == ["ETH"]
    assert [(f.provider, f.error) for f in batch.failures] == [("coingecko", "TransientProviderError")]
    assert not chain.fetch_quotes([BTC]).failures  # nothing failed: nothing to name


def test_every_requested_symbol_ends_in_exactly_one_place() -> None:
    class Partial(FakeClient):
        def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
            return QuoteBatch(
                quotes=(quote("BTCUSDT", self.name),),
                rejected=(Rejected("ETHUSDT", "binance: unknown", unknown=True),),
                failed=(Failed("XRPUSDT", "binance: HTTP 500 while isolating", retry_after=3),),
            )

    xrp = Instrument("XRP", {"binance": "XRPUSDT"})
    doge = Instrument("DOGE", {"binance": "DOGEUSDT"})
    batch = ProviderChain([Partial("binance")]).fetch_quotes([BTC, ETH, xrp, doge])
    places = [q.symbol for q in batch.quotes] + [r.symbol for r in batch.rejected] + [f.symbol for f in batch.failed]
    assert sorted(places) == ["BTC", "DOGE", "ETH", "XRP"]
    assert [f.symbol for f in batch.failed] == ["XRP"] and batch.failed[0].retry_after == 3
    rejected = {r.symbol: r for r in batch.rejected}
    assert rejected["ETH"].unknown
    assert not rejected["DOGE"].unknown  # left out of the reply: a refusal, not proof it is unknown


def test_a_symbol_is_unknown_only_when_every_provider_asked_says_so() -> None:
    chain = ProviderChain([FakeClient("binance"), FakeClient("coingecko", error=InvalidKeyError("coingecko: bad key"))])
    both_unknown = ProviderChain([FakeClient("binance"), FakeClient("coingecko")]).fetch_quotes([BTC, SOL])
    assert {r.symbol: r.unknown for r in both_unknown.rejected} == {"BTC": True, "SOL": True}
    with pytest.raises(PermanentProviderError):
        chain.fetch_quotes([BTC])  # nothing served, every failure permanent
    mixed = ProviderChain(
        [FakeClient("binance", ["ETHUSDT"]), FakeClient("coingecko", error=InvalidKeyError("coingecko: bad key"))]
    ).fetch_quotes([BTC, ETH])
    assert {r.symbol: r.unknown for r in mixed.rejected} == {"BTC": False}


def test_a_symbol_served_after_an_earlier_transient_fault_is_not_failed() -> None:
    chain = ProviderChain([FakeClient("binance", error=transient("binance")), FakeClient("coingecko", ["bitcoin"])])
    batch = chain.fetch_quotes([BTC, ETH])
    assert served(batch) == {"BTC": "coingecko"}
    assert [f.symbol for f in batch.failed] == ["ETH"]
    assert batch.rejected == ()


def test_the_verdict_names_every_failed_provider_redacted() -> None:
    chain = ProviderChain(
        [
            FakeClient("binance", error=transient("binance")),
            FakeClient(
                "alphavantage",
                error=InvalidKeyError("alphavantage: refused https://av.test/query?apikey=SECRET123\r\nforged"),
            ),
        ]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.fetch_quotes([Instrument("IBM", {"binance": "IBMUSDT", "alphavantage": "IBM"})])
    failures = caught.value.failures
    assert [(f.provider, f.error) for f in failures] == [
        ("binance", "TransientProviderError"),
        ("alphavantage", "InvalidKeyError"),
    ]
    assert all(isinstance(f, ProviderFailure) for f in failures)
    assert "SECRET123" not in failures[1].message and "\n" not in failures[1].message


def test_the_permanent_verdict_carries_the_failures_too() -> None:
    chain = ProviderChain(
        [FakeClient("binance", error=MalformedReplyError("junk")), FakeClient("coingecko", error=InvalidKeyError("k"))]
    )
    with pytest.raises(PermanentProviderError) as caught:
        chain.fetch_quotes([BTC])
    assert [f.provider for f in caught.value.failures] == ["binance", "coingecko"]


def test_when_nothing_is_served_and_a_failure_was_transient_it_raises_all_failed_with_the_shortest_wait() -> None:
    chain = ProviderChain(
        [
            FakeClient("binance", error=transient("binance", retry_after=30)),
            FakeClient("coingecko", error=InvalidKeyError("coingecko: bad key")),
            FakeClient("coinmarketcap", error=transient("coinmarketcap", retry_after=5)),
        ]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.fetch_quotes([BTC])
    assert isinstance(caught.value, TransientProviderError)
    assert caught.value.retry_after == 5
    assert "binance" in str(caught.value) and "coingecko" in str(caught.value)


def test_when_every_provider_refuses_permanently_it_raises_a_permanent_error() -> None:
    chain = ProviderChain(
        [FakeClient("binance", error=MalformedReplyError("junk")), FakeClient("coingecko", error=InvalidKeyError("k"))]
    )
    with pytest.raises(PermanentProviderError) as caught:
        chain.fetch_quotes([BTC])
    assert not isinstance(caught.value, TransientProviderError)


def test_symbols_every_provider_rejects_are_returned_not_raised() -> None:
    batch = ProviderChain([FakeClient("binance"), FakeClient("coingecko")]).fetch_quotes([BTC])
    assert batch.quotes == ()
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("BTC", True)]


def test_two_of_our_assets_sharing_a_provider_id_both_get_the_quote() -> None:
    wrapped = Instrument("WBTC", {"coingecko": "bitcoin"})
    batch = ProviderChain([FakeClient("coingecko", ["bitcoin"])]).fetch_quotes([BTC, wrapped])
    assert served(batch) == {"BTC": "coingecko", "WBTC": "coingecko"}


def test_a_quote_for_an_id_nobody_asked_for_is_dropped() -> None:
    class Chatty(FakeClient):
        def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
            return QuoteBatch(quotes=(quote("BTCUSDT", "binance"), quote("DOGEUSDT", "binance")))

    batch = ProviderChain([Chatty("binance")]).fetch_quotes([BTC])
    assert served(batch) == {"BTC": "binance"}


def test_bars_returned_with_quotes_are_renamed_to_our_symbols() -> None:
    class WithBars(FakeClient):
        def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
            return QuoteBatch(quotes=(quote("bitcoin", self.name),), bars=(bar("bitcoin", self.name),))

    batch = ProviderChain([WithBars("coingecko")]).fetch_quotes([BTC])
    assert [b.symbol for b in batch.bars] == ["BTC"]


def test_an_open_circuit_skips_the_provider_without_calling_it() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=60)
    binance = FakeClient("binance", ["BTCUSDT"], error=transient("binance"))
    coingecko = FakeClient("coingecko", ["bitcoin"])
    chain = ProviderChain([binance, coingecko], breaker=breaker)

    for _ in range(4):
        assert served(chain.fetch_quotes([BTC])) == {"BTC": "coingecko"}

    assert len(binance.calls) == 2
    assert breaker.state("binance").state == OPEN


def test_unknown_symbols_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=60)
    binance = FakeClient("binance", [])
    chain = ProviderChain([binance], breaker=breaker)
    for _ in range(3):
        chain.fetch_quotes([BTC])
    assert len(binance.calls) == 3
    assert breaker.state("binance").failures == 0


def test_a_provider_may_appear_only_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        ProviderChain([FakeClient("binance"), FakeClient("binance")])


def test_the_chain_is_named_after_its_providers_in_order() -> None:
    chain = ProviderChain([FakeClient("yahoo"), FakeClient("alphavantage")])
    assert chain.name == "yahoo>alphavantage"
    assert chain.providers == ("yahoo", "alphavantage")


# --- bars and news --------------------------------------------------------------------------------


def test_bars_fail_over_and_carry_our_symbol() -> None:
    chain = ProviderChain([FakeClient("binance", error=transient("binance")), FakeClient("coingecko", ["bitcoin"])])
    bars = chain.fetch_bars(BTC, interval="1d", limit=10)
    assert [(b.symbol, b.source) for b in bars] == [("BTC", "coingecko")]


def test_bars_for_an_instrument_no_provider_knows_raise_unknown_symbol() -> None:
    with pytest.raises(UnknownSymbolError):
        ProviderChain([FakeClient("binance")]).fetch_bars(Instrument("XYZ", {}))


def test_bars_keep_the_unknown_symbol_error_when_it_is_the_only_failure() -> None:
    with pytest.raises(UnknownSymbolError):
        ProviderChain([FakeClient("binance", [])]).fetch_bars(BTC)


def test_bars_raise_all_failed_when_every_provider_is_down_due_when_the_first_can_serve() -> None:
    chain = ProviderChain(
        [FakeClient("binance", error=transient("binance", 7)), FakeClient("coingecko", error=transient("coingecko", 3))]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.fetch_bars(BTC)
    assert caught.value.retry_after == 3


def test_bars_from_a_provider_that_named_no_wait_are_due_after_the_backoff_not_the_others_wait() -> None:
    chain = ProviderChain(
        [FakeClient("binance", error=transient("binance", 7)), FakeClient("coingecko", error=transient("coingecko"))]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        chain.fetch_bars(BTC)
    assert caught.value.retry_after is None


def test_an_empty_bar_answer_falls_through_to_the_next_provider() -> None:
    class Empty(FakeClient):
        def fetch_bars(self, symbol: str, *, interval: str = "1d", limit: int = 250) -> list[Bar]:
            return []

    bars = ProviderChain([Empty("binance"), FakeClient("coingecko", ["bitcoin"])]).fetch_bars(BTC)
    assert [b.source for b in bars] == ["coingecko"]


def test_news_fails_over_to_the_next_provider() -> None:
    chain = ProviderChain([FakeClient("newsapi", error=transient("newsapi")), FakeClient("backup")])
    assert [a.source for a in chain.fetch_articles("BTC OR ETH")] == ["backup"]


def test_a_chain_with_no_news_provider_serves_no_articles() -> None:
    assert ProviderChain([]).fetch_articles("BTC") == []


# --- real clients through MockTransport -----------------------------------------------------------


def test_real_clients_fail_over_from_a_binance_5xx_to_coingecko() -> None:
    binance_api = FakeApi(host="binance.test")
    binance_api.route("/api/v3/ticker/24hr", lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    gecko_api = FakeApi(host="gecko.test")
    gecko_api.route("/simple/price", lambda request: json_response("coingecko", "simple_price_ok.json"))
    binance = BinanceClient(build_client(transport=httpx.MockTransport(binance_api)), base_url=binance_api.base_url)
    coingecko = CoinGeckoClient(
        build_client(transport=httpx.MockTransport(gecko_api)), base_url=gecko_api.base_url, clock=lambda: FIXED_NOW
    )
    chain = ProviderChain([binance, coingecko], breaker=CircuitBreaker(failure_threshold=5))

    batch = chain.fetch_quotes([BTC, ETH])

    assert served(batch) == {"BTC": "coingecko", "ETH": "coingecko"}
    assert len(binance_api.requests) == 1
    assert gecko_api.requests[0].url.params["ids"] == "bitcoin,ethereum"


def test_a_rate_limited_provider_is_skipped_without_a_request_and_without_opening_its_circuit() -> None:
    binance_api = FakeApi(host="binance.test")
    binance_api.route("/api/v3/ticker/24hr", lambda request: httpx.Response(500))
    gecko_api = FakeApi(host="gecko.test")
    gecko_api.route("/simple/price", lambda request: json_response("coingecko", "simple_price_ok.json"))
    limiter = RateLimiter(None, {"binance": "1/minute"})
    limiter.acquire("binance", timeout=0)  # the quota is spent
    http = guard_client(build_client(transport=httpx.MockTransport(binance_api)), limiter, "binance", timeout=0)
    breaker = CircuitBreaker(failure_threshold=1)
    coingecko = CoinGeckoClient(
        build_client(transport=httpx.MockTransport(gecko_api)), base_url=gecko_api.base_url, clock=lambda: FIXED_NOW
    )
    chain = ProviderChain([BinanceClient(http, base_url=binance_api.base_url), coingecko], breaker=breaker)

    batch = chain.fetch_quotes([BTC])

    assert served(batch) == {"BTC": "coingecko"}
    assert binance_api.requests == []
    assert breaker.state("binance").failures == 0
