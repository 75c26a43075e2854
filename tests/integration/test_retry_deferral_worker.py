"""On a real worker: a retry goes when the first provider of its chain can take it (issue 20, item 8),
and an attempt that asked no provider at all spends no retry (the flaky-provider chaos run).

Alpha Vantage is paused for every worker for six hours (its daily quota spent) and Yahoo answers one
HTTP 500. The batch must be stored after the ordinary backoff, by Yahoo, with no request to the paused
provider; before the fix its retry waited for the pause (capped at TASK_RETRY_AFTER_MAX, 600 s),
hopping on every few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from backend.deadletters.models import DeadLetter
from backend.fake_provider import FakeProviderServer
from backend.market.models import Quote
from backend.providers.breaker import build_breaker
from backend.providers.pauses import PauseBoard
from backend.tasks.tasks import fetch_quotes
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, report, subprocess_env

# The pause is set here and must be seen by the worker: shared provider state is Redis (without it each
# process keeps its own pauses, as docs say).
pytestmark = [pytest.mark.integration, pytest.mark.redis]

STOCKS = ["AAPL", "AMZN", "GOOGL", "JPM", "META", "MSFT", "NVDA", "TSLA", "V", "WMT"]
QUOTE_PATH = "/yahoo/v7/finance/quote"
TASK_ATTEMPTS = settings.TASK_MAX_RETRIES + 1  # the first run and its retries


@pytest.fixture
def pauses(live_worker: WorkerProcess) -> Iterator[PauseBoard]:
    """The pause board the session worker reads (its provider state prefix), cleared afterwards."""
    board = build_breaker(settings.REDIS_URL or None, prefix=subprocess_env()["PROVIDER_STATE_PREFIX"]).pauses
    yield board
    for provider in ("yahoo", "alphavantage"):
        board.clear(provider)


def test_a_batch_is_stored_after_the_backoff_while_its_other_provider_is_paused_for_hours(
    live_worker: WorkerProcess, providers: FakeProviderServer, pauses: PauseBoard, make_asset
) -> None:
    for symbol in STOCKS:
        make_asset(symbol, "stock")
    pauses.pause("alphavantage", 6 * 3600, reason="daily quota spent (test)")
    providers.set_fault("yahoo", "status_500", count=1, path="/v7/finance/quote")

    started = time.monotonic()
    result = fetch_quotes.apply_async(args=("stock", STOCKS))
    stored = wait_for(lambda: Quote.objects.filter(asset__symbol__in=STOCKS).count() == len(STOCKS), timeout=90)
    elapsed = time.monotonic() - started

    assert stored, live_worker.log()[-4000:]
    # The first retry's backoff is at most the cap; the pause (six hours, capped at 600 s) was not waited for.
    assert elapsed < settings.TASK_RETRY_BACKOFF_MAX + 10, elapsed
    assert set(Quote.objects.filter(asset__symbol__in=STOCKS).values_list("source", flat=True)) == {"yahoo"}
    statuses = [r["status"] for r in providers.requests("yahoo") if r["path"] == QUOTE_PATH]
    assert statuses == [500, 200]
    assert providers.requests("alphavantage") == []  # paused: skipped without a request
    assert result.get(timeout=30)["stored_quotes"] == len(STOCKS)
    assert f"{result.id}] waits" not in live_worker.log()  # no deferral hop
    assert not DeadLetter.objects.filter(task_id=result.id).exists()
    report(f"retry deferral: 10 stocks stored {elapsed:.1f} s after one Yahoo 500 with Alpha Vantage paused 6 h")


DEFERRED = "asked no provider for"


def quote_requests(providers: FakeProviderServer) -> list[dict]:
    """Quote requests the stock chain's providers received (bars for a new asset's backfill left out)."""
    requests = [*providers.requests("yahoo"), *providers.requests("alphavantage")]
    return [r for r in requests if "quote" in f"{r['path']}?{r.get('query', '')}".lower()]


def test_a_batch_whose_providers_stay_paused_past_its_retry_budget_is_stored_with_its_retries_unspent(
    live_worker: WorkerProcess, providers: FakeProviderServer, pauses: PauseBoard, make_asset
) -> None:
    """Other batches' 429s keep re-arming every pause (the chaos run's load): attempts that ask nobody are
    deferred, not retried; once the pauses lapse the batch is stored with ``request.retries`` still 0."""
    for symbol in STOCKS:
        make_asset(symbol, "stock")
    stop = threading.Event()

    def rearm() -> None:
        while not stop.is_set():
            for provider in ("yahoo", "alphavantage"):
                pauses.pause(provider, 2, reason="another batch's 429 (test)")
            stop.wait(0.5)

    rearm_thread = threading.Thread(target=rearm, daemon=True)
    for provider in ("yahoo", "alphavantage"):
        pauses.pause(provider, 2, reason="another batch's 429 (test)")
    rearm_thread.start()
    try:
        result = fetch_quotes.apply_async(args=("stock", STOCKS))
        attempts = TASK_ATTEMPTS + 1  # one more attempt than its whole retry budget allows
        deferred = wait_for(lambda: live_worker.log().count(f"{result.id}] {DEFERRED}") >= attempts, timeout=90)
        assert deferred, live_worker.log()[-4000:]
        assert quote_requests(providers) == []  # paused: asked nobody (a new asset's backfill may ask for bars)
    finally:
        stop.set()
        rearm_thread.join()
    unpaused = time.monotonic()

    assert result.get(timeout=60)["stored_quotes"] == len(STOCKS)
    stored_after = time.monotonic() - unpaused
    log = live_worker.log()
    lines = [line for line in log.splitlines() if f"{result.id}] {DEFERRED}" in line]
    assert all("retries kept at 0" in line for line in lines), lines
    assert f"{result.id}] retry:" not in log  # no retry was spent
    assert Quote.objects.filter(asset__symbol__in=STOCKS).count() == len(STOCKS)
    assert not DeadLetter.objects.filter(task_id=result.id).exists()
    report(
        f"nobody-asked deferral: {len(lines)} deferrals (retry budget {TASK_ATTEMPTS - 1}), "
        f"10 stocks stored {stored_after:.1f} s after the pauses stopped, retries 0"
    )
