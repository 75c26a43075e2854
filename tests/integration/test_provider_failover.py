"""Real clients against the fake provider server over loopback: failover, breaker, shared rate limit.

The fake server's request log is the witness: which provider was asked, how often and when.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from django_celery_results.models import TaskResult

from backend.core.celery import app
from backend.fake_provider import FakeProviderServer
from backend.market.models import Quote
from backend.providers.binance import BinanceClient
from backend.providers.breaker import CLOSED, OPEN, build_breaker
from backend.providers.coingecko import CoinGeckoClient
from backend.providers.coinmarketcap import CoinMarketCapClient
from backend.providers.errors import AllProvidersFailedError
from backend.providers.http import build_client
from backend.providers.models import QuoteBatch
from backend.providers.orchestrator import Instrument, ProviderChain
from backend.providers.ratelimit import RateLimiter, guard_client, window_max
from backend.tasks.quotes import refresh_quotes
from backend.tasks.sources import circuit_breaker, news_source, quote_source, reset_sources
from backend.tasks.tasks import fetch_quotes
from tests.fixtures.worker import start_worker, stop_worker

pytestmark = pytest.mark.integration

CRYPTO = {"BTC": ("BTCUSDT", "bitcoin"), "ETH": ("ETHUSDT", "ethereum"), "SOL": ("SOLUSDT", "solana")}
LIMIT = 10  # requests per second in the rate-limit tests


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    server.clear_faults()
    logged(server)  # let the previous test's last requests reach the log before clearing it
    server.clear_requests()
    server.clear_unknown_symbols()
    yield server
    server.clear_faults()


@pytest.fixture
def fake_mode(settings, fake: FakeProviderServer) -> Iterator[FakeProviderServer]:
    """MARKET_DATA_MODE=fake on this server; limiter and breaker state under a fresh Redis prefix."""
    settings.MARKET_DATA_MODE = "fake"
    settings.FAKE_PROVIDER_URL = fake.url
    settings.PROVIDER_STATE_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    settings.PROVIDER_RATE_LIMITS = {}
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_RESET_SECONDS = 1.0
    reset_sources()
    yield fake
    reset_sources()


@pytest.fixture
def crypto_assets(make_asset) -> None:
    for symbol, (pair, coin_id) in CRYPTO.items():
        make_asset(symbol, "crypto", binance_symbol=pair, coingecko_id=coin_id)


def logged(fake: FakeProviderServer, provider: str | None = None) -> list[dict]:
    """The provider's requests once the log stops growing: the server logs a request after replying."""
    deadline = time.monotonic() + 2.0
    entries = fake.requests(provider)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        again = fake.requests(provider)
        if len(again) == len(entries):
            break
        entries = again
    return entries


def served_by(fake: FakeProviderServer, provider: str) -> int:
    return len(logged(fake, provider))


def log_times(fake: FakeProviderServer, provider: str) -> list[float]:
    return [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in logged(fake, provider)]


# --- failover -------------------------------------------------------------------------------------


def test_crypto_quotes_come_from_coingecko_when_binance_answers_500_and_rows_record_it(
    fake_mode: FakeProviderServer, crypto_assets
) -> None:
    fake_mode.set_fault("binance", "status_500")

    summary = refresh_quotes("crypto", ["BTC", "ETH", "SOL"])

    assert summary.stored_quotes == 3
    assert dict(Quote.objects.values_list("asset__symbol", "source")) == {
        "BTC": "coingecko",
        "ETH": "coingecko",
        "SOL": "coingecko",
    }
    assert {e["status"] for e in logged(fake_mode, "binance")} == {500}
    assert served_by(fake_mode, "coingecko") == 1  # one batched call for all three ids
    assert served_by(fake_mode, "coinmarketcap") == 0


def test_without_faults_binance_serves_crypto_and_rows_record_it(fake_mode: FakeProviderServer, crypto_assets) -> None:
    refresh_quotes("crypto", ["BTC", "ETH", "SOL"])
    assert set(Quote.objects.values_list("source", flat=True)) == {"binance"}
    assert served_by(fake_mode, "coingecko") == 0


def test_stock_quotes_fail_over_from_yahoo_to_alpha_vantage(fake_mode: FakeProviderServer, make_asset) -> None:
    make_asset("AAPL", "stock")
    make_asset("MSFT", "stock")
    fake_mode.set_fault("yahoo", "status_503")

    refresh_quotes("stock", ["AAPL", "MSFT"])

    assert dict(Quote.objects.values_list("asset__symbol", "source")) == {
        "AAPL": "alphavantage",
        "MSFT": "alphavantage",
    }
    assert served_by(fake_mode, "alphavantage") == 2  # GLOBAL_QUOTE is one symbol per call


def test_a_symbol_binance_does_not_list_is_served_by_the_next_provider(
    fake_mode: FakeProviderServer, crypto_assets
) -> None:
    fake_mode.add_unknown_symbols("SOLUSDT")
    batch = quote_source("crypto").fetch_quotes(["BTC", "ETH", "SOL"])
    assert {q.symbol: q.source for q in batch.quotes} == {"BTC": "binance", "ETH": "binance", "SOL": "coingecko"}
    assert batch.rejected == ()


def test_bars_fail_over_from_binance_to_coingecko(fake_mode: FakeProviderServer, crypto_assets) -> None:
    fake_mode.set_fault("binance", "status_503")
    bars = quote_source("crypto").fetch_bars("BTC", interval="1d", limit=30)
    assert bars and {(b.symbol, b.source) for b in bars} == {("BTC", "coingecko")}


def test_news_comes_from_newsapi_in_fake_mode(fake_mode: FakeProviderServer) -> None:
    articles = news_source().fetch_articles("bitcoin", max_pages=1)
    assert articles and {a.source for a in articles} == {"newsapi"}
    assert served_by(fake_mode, "newsapi") == 1


# --- circuit breaker ------------------------------------------------------------------------------


def test_the_breaker_opens_after_n_failures_then_closes_after_recovery_and_the_cool_down(
    fake_mode: FakeProviderServer, crypto_assets
) -> None:
    source = quote_source("crypto")
    fake_mode.set_fault("binance", "status_500")

    for _ in range(3):  # BREAKER_FAILURE_THRESHOLD
        assert {q.source for q in source.fetch_quotes(["BTC"]).quotes} == {"coingecko"}
    assert served_by(fake_mode, "binance") == 3
    assert circuit_breaker().state("binance").state == OPEN

    for _ in range(5):  # open: Binance is not asked at all
        assert {q.source for q in source.fetch_quotes(["BTC"]).quotes} == {"coingecko"}
    assert served_by(fake_mode, "binance") == 3

    fake_mode.clear_faults("binance")  # the provider recovers, but the circuit is still cooling down
    assert {q.source for q in source.fetch_quotes(["BTC"]).quotes} == {"coingecko"}
    assert served_by(fake_mode, "binance") == 3

    time.sleep(1.1)  # BREAKER_RESET_SECONDS
    assert {q.source for q in source.fetch_quotes(["BTC"]).quotes} == {"binance"}  # the probe
    assert served_by(fake_mode, "binance") == 4
    assert circuit_breaker().state("binance").state == CLOSED
    assert {q.source for q in source.fetch_quotes(["BTC", "ETH"]).quotes} == {"binance"}


def test_unknown_symbols_never_open_the_breaker(fake_mode: FakeProviderServer, crypto_assets) -> None:
    fake_mode.add_unknown_symbols("BTCUSDT")
    source = quote_source("crypto")
    for _ in range(5):
        assert {q.source for q in source.fetch_quotes(["BTC"]).quotes} == {"coingecko"}
    assert served_by(fake_mode, "binance") == 5
    assert circuit_breaker().state("binance").state == CLOSED


# --- chains by mode -------------------------------------------------------------------------------


def test_live_mode_leaves_out_providers_whose_key_is_missing(settings) -> None:
    settings.MARKET_DATA_MODE = "live"
    settings.PROVIDER_STATE_REDIS_URL = ""
    settings.ALPHA_VANTAGE_API_KEY = settings.COINMARKETCAP_API_KEY = settings.NEWSAPI_API_KEY = ""
    settings.COINGECKO_API_KEY = ""
    reset_sources()
    try:
        assert quote_source("crypto").quotes.providers == ("binance", "coingecko")
        assert quote_source("stock").quotes.providers == ("yahoo",)
        assert quote_source("crypto").bars.providers == ("binance", "coingecko")
        assert news_source().configured is False
        assert news_source().fetch_articles("bitcoin") == []
    finally:
        reset_sources()


def test_live_mode_with_keys_builds_every_chain(settings) -> None:
    settings.MARKET_DATA_MODE = "live"
    settings.PROVIDER_STATE_REDIS_URL = ""
    settings.ALPHA_VANTAGE_API_KEY = settings.COINMARKETCAP_API_KEY = settings.NEWSAPI_API_KEY = "k"
    reset_sources()
    try:
        assert quote_source("crypto").quotes.providers == ("binance", "coingecko", "coinmarketcap")
        assert quote_source("stock").quotes.providers == ("yahoo", "alphavantage")
        assert news_source().chain.providers == ("newsapi",)
    finally:
        reset_sources()


def test_simulated_mode_needs_no_server(settings, make_asset) -> None:
    settings.MARKET_DATA_MODE = "simulated"
    make_asset("BTC", "crypto")
    reset_sources()
    try:
        batch = quote_source("crypto").fetch_quotes(["BTC", "NOPE"])
        assert [(q.symbol, q.source) for q in batch.quotes] == [("BTC", "simulated")]
        assert [r.symbol for r in batch.rejected] == ["NOPE"]
    finally:
        reset_sources()


# --- issue 8 faults, real clients and the real chain against the fake server -------------------------


@pytest.fixture
def chains(fake: FakeProviderServer, redis_url: str) -> Iterator[Callable[..., ProviderChain]]:
    """Build crypto quote chains (Binance > CoinGecko > CoinMarketCap) whose breaker and pauses live in
    Redis under one fresh prefix: two chains built here are two workers sharing provider state."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    clients: list[httpx.Client] = []

    def build(**breaker_options: float) -> ProviderChain:
        http = build_client(timeout=5.0)
        clients.append(http)
        options = {"failure_threshold": 1000, "reset_seconds": 1.0, **breaker_options}
        breaker = build_breaker(redis_url, prefix=prefix, **options)
        return ProviderChain(
            [
                BinanceClient(http, base_url=fake.base_url("binance")),
                CoinGeckoClient(http, base_url=fake.base_url("coingecko")),
                CoinMarketCapClient(http, base_url=fake.base_url("coinmarketcap"), api_key="fake-key"),
            ],
            breaker=breaker,
        )

    yield build
    for http in clients:
        http.close()
    store = redis.Redis.from_url(redis_url)
    for key in store.scan_iter(match=f"{prefix}:*"):
        store.delete(key)


def coin(symbol: str) -> Instrument:
    return Instrument(symbol, {"binance": f"{symbol}USDT", "coingecko": symbol.lower(), "coinmarketcap": symbol})


KNOWN = [coin(f"C{i}X") for i in range(26)]
UNKNOWN = [coin(f"ZZZ{i}") for i in range(4)]


def placed(batch: QuoteBatch) -> list[str]:
    return sorted(
        [q.symbol for q in batch.quotes] + [r.symbol for r in batch.rejected] + [f.symbol for f in batch.failed]
    )


@pytest.mark.parametrize("fault", ["truncated_json", "cut_connection"])
def test_a_truncated_reply_fails_over_instead_of_failing_the_batch(
    fake: FakeProviderServer, chains, fault: str
) -> None:
    fake.set_fault("binance", fault)
    batch = chains().fetch_quotes(KNOWN[:3])
    assert {q.source for q in batch.quotes} == {"coingecko"}
    assert len(batch.quotes) == 3 and batch.rejected == () and batch.failed == ()


def test_a_bare_nan_refuses_one_record_and_the_next_provider_serves_it(fake: FakeProviderServer, chains) -> None:
    fake.set_fault("binance", "nan_records", count=1)
    batch = chains().fetch_quotes(KNOWN[:5])
    sources = {q.symbol: q.source for q in batch.quotes}
    assert sources == {"C0X": "coingecko", **{f"C{i}X": "binance" for i in range(1, 5)}}


def test_unknown_symbols_in_a_binance_batch_are_bisected_and_rejected_as_unknown_by_every_provider(
    fake: FakeProviderServer, chains
) -> None:
    wanted = KNOWN[:18] + UNKNOWN[:2]  # one Binance batch of 20 with two unknown pairs
    batch = chains().fetch_quotes(wanted)

    assert len(batch.quotes) == 18 and {q.source for q in batch.quotes} == {"binance"}
    assert [(r.symbol, r.unknown) for r in batch.rejected] == [("ZZZ0", True), ("ZZZ1", True)]
    binance_requests = served_by(fake, "binance")
    assert binance_requests <= 1 + 2 * 2 * math.ceil(math.log2(20))


def test_a_429_with_retry_after_pauses_binance_for_every_worker(fake: FakeProviderServer, chains) -> None:
    fake.set_fault("binance", "status_429", retry_after=30)
    first_worker, second_worker = chains(), chains()

    first = first_worker.fetch_quotes(KNOWN[:3])
    second = second_worker.fetch_quotes(KNOWN[:3])

    assert {q.source for q in first.quotes} == {q.source for q in second.quotes} == {"coingecko"}
    assert served_by(fake, "binance") == 1  # the second worker never called the paused provider
    paused = second_worker._pauses.paused()  # noqa: SLF001 - the board the chain was built on
    assert set(paused) == {"binance"}


def test_a_daily_credit_exhaustion_pauses_coinmarketcap_until_utc_midnight(fake: FakeProviderServer, chains) -> None:
    fake.set_fault("binance", "status_500")
    fake.set_fault("coingecko", "status_503")
    fake.set_fault("coinmarketcap", "throttle_body", variant="1009")
    with pytest.raises(AllProvidersFailedError) as caught:
        chains().fetch_quotes(KNOWN[:2])
    until = chains()._pauses.paused()["coinmarketcap"]  # noqa: SLF001
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert abs((until - midnight).total_seconds()) < 5
    assert {f.provider for f in caught.value.failures} == {"binance", "coingecko", "coinmarketcap"}


def test_under_30_percent_random_faults_known_symbols_get_served_and_unknown_ones_named_after_retries(
    fake: FakeProviderServer, chains
) -> None:
    """Retrying what failed (as the tasks do) serves every known symbol and classifies every unknown one.

    A symbol is "unknown" only from a round in which every provider answered for it cleanly; any
    transient fault on its way makes it "failed" for that round, never dropped, never misfiled.
    """
    fake.set_fault_rate(0.3, seed=8, providers=["binance", "coingecko", "coinmarketcap"])
    chain = chains()
    served: dict[str, str] = {}
    unknown: set[str] = set()
    pending = KNOWN + UNKNOWN
    for _ in range(30):
        try:
            batch = chain.fetch_quotes(pending)
        except AllProvidersFailedError as exc:
            time.sleep(min(exc.retry_after or 0.2, 1.5))
            continue
        assert placed(batch) == sorted(i.symbol for i in pending)  # every symbol exactly once
        assert not {q.symbol for q in batch.quotes} & {i.symbol for i in UNKNOWN}
        assert not {r.symbol for r in batch.rejected if r.unknown} & {i.symbol for i in KNOWN}
        served.update({q.symbol: q.source for q in batch.quotes})
        unknown |= {r.symbol for r in batch.rejected if r.unknown}
        # A refused NaN record is a verdict on that reply, not on the symbol: ask again.
        retry = {f.symbol for f in batch.failed} | {r.symbol for r in batch.rejected if not r.unknown}
        pending = [i for i in pending if i.symbol in retry]
        if not pending:
            break
        wait = max((f.retry_after or 0.0 for f in batch.failed), default=0.0)
        time.sleep(min(max(wait, 0.05), 1.5))
    fake.clear_faults()

    assert set(served) == {i.symbol for i in KNOWN}
    assert unknown == {i.symbol for i in UNKNOWN}
    faults = {e["fault"] for e in logged(fake)} - {None}
    assert {"status_429", "status_500", "truncated_json", "nan_records"} <= faults


# --- the shared rate limit ------------------------------------------------------------------------
#
# Tolerance. The moving window admits a request only if fewer than LIMIT were admitted in the
# second before it (by the acquiring process's clock), so unlike a fixed window there is no
# boundary burst of 2 x LIMIT to allow for: any LIMIT + 1 admissions span MORE than one second.
# The server logs admission time + latency d (connect, send, handle; 0-10 ms on loopback, more for a
# fresh connection or when 2 cores run 4 workers), and the window refills in bursts exactly one
# second apart, so a slow first request of one burst shares a logged second with the next burst
# (measured: 11 or 12 in a 1 s window with no limit breach at all). Hence the check: if the latency
# spread stays under JITTER, LIMIT + 1 requests inside a window of 1 s - JITTER would mean
# a[i+LIMIT] - a[i] <= 1 s - JITTER + JITTER = 1 s, which the moving window forbids. And the run as a
# whole must last as long as the quota demands: n admissions take at least floor((n - 1) / LIMIT) s.
JITTER = 0.1


def assert_rate_held(times: list[float]) -> None:
    busiest = window_max(times, 1.0 - JITTER)
    assert busiest <= LIMIT, f"{busiest} requests within {1.0 - JITTER:.2f}s"
    span = max(times) - min(times)
    # 10 ms slack: the log stamps are truncated to milliseconds.
    assert span >= math.floor((len(times) - 1) / LIMIT) - 0.01, f"{len(times)} requests in only {span:.2f}s"


def test_unthrottled_the_same_load_runs_well_over_10_per_second(fake: FakeProviderServer) -> None:
    # The premise of the two tests below: without the limiter, this machine and server do far more.
    with build_client() as http:
        client = BinanceClient(http, base_url=fake.base_url("binance"))
        for _ in range(40):
            client.fetch_quotes(["BTCUSDT"])
    assert window_max(log_times(fake, "binance"), 1.0 - JITTER) > 2 * LIMIT


def test_without_redis_the_limit_holds_across_threads_of_one_process__cross_process_needs_redis(
    fake: FakeProviderServer,
) -> None:
    limiter = RateLimiter(None, {"binance": f"{LIMIT}/second"})

    def run() -> None:
        with build_client() as http:
            guard_client(http, limiter, "binance", timeout=30)
            client = BinanceClient(http, base_url=fake.base_url("binance"))
            for _ in range(22):
                client.fetch_quotes(["BTCUSDT"])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    times = log_times(fake, "binance")
    assert len(times) == 44
    assert_rate_held(times)


def test_a_10_per_second_limit_holds_across_two_worker_processes_sharing_redis(
    redis_url: str, fake: FakeProviderServer, transactional_db, make_asset
) -> None:
    symbols = [f"T{i:02d}" for i in range(48)]
    for symbol in symbols:
        make_asset(symbol, "crypto", binance_symbol=f"{symbol}USDT", coingecko_id=symbol.lower())
    env = {
        "MARKET_DATA_MODE": "fake",
        "FAKE_PROVIDER_URL": fake.url,
        "BINANCE_RATE_LIMIT": f"{LIMIT}/second",
        "PROVIDER_RATE_LIMIT_MAX_WAIT": "40",  # below the soft limit; failing over would hide the limit
        "PROVIDER_STATE_REDIS_URL": redis_url,
        "PROVIDER_STATE_PREFIX": f"test-{uuid.uuid4().hex[:10]}",
        "BREAKER_FAILURE_THRESHOLD": "1000",
    }
    queue = f"provider-test-{uuid.uuid4().hex[:8]}"
    workers = [start_worker(env), start_worker(env)]
    try:
        names = [w.hostname for w in workers]
        # A queue only these two workers consume, so a session worker in another mode cannot take the tasks.
        replies = app.control.add_consumer(queue, destination=names, reply=True, timeout=10)
        assert len(replies) == 2, replies
        fake.clear_requests()

        results = [fetch_quotes.apply_async(args=("crypto", [s]), queue=queue) for s in symbols]
        summaries = [r.get(timeout=120) for r in results]

        assert [s["stored_quotes"] for s in summaries] == [1] * len(symbols)
        ran_on = set(TaskResult.objects.filter(task_id__in=[r.id for r in results]).values_list("worker", flat=True))
        assert ran_on == set(names), "both worker processes must have sent requests"
        assert set(Quote.objects.values_list("source", flat=True)) == {"binance"}
        # Creating the assets also queued their backfills (klines), which these workers may serve meanwhile:
        # one ticker request per task, and the limit must hold over every Binance request.
        tickers = [e for e in logged(fake, "binance") if "/ticker/" in e["path"]]
        assert len(tickers) == len(symbols)
        assert_rate_held(log_times(fake, "binance"))
    finally:
        for worker in workers:
            stop_worker(worker)
