"""Every provider-backed task type on a real worker: success, transient fault then success, permanent
fault without retry, and a worker process killed mid-task whose redelivered task completes once.

The worker runs the real httpx clients against the fake provider server over loopback; faults are
armed on that server, and its request log is what the assertions count.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime

import pytest
from celery.result import AsyncResult
from django.conf import settings
from django.utils import timezone

from backend.core.celery import app
from backend.market.models import NewsArticle, PriceBar, Quote
from backend.providers.errors import PermanentProviderError
from backend.providers.simulated import floor_time
from backend.tasks.tasks import backfill_history, fetch_news, fetch_quotes
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

# task, how to call it, the endpoints whose faults it meets (every provider of the chain is faulted
# on its endpoint, so failover cannot hide the fault), and the request path whose attempts are counted.
CASES = {
    "quotes.fetch": (
        lambda: fetch_quotes.delay("stock", ["AAPL", "MSFT"]),
        {"yahoo": "/v7/finance/quote", "alphavantage": "/query"},
        "/yahoo/v7/",
    ),
    "news.fetch": (lambda: fetch_news.delay(), {"newsapi": "/v2/everything"}, "/newsapi/"),
    "history.backfill": (
        lambda: backfill_history.delay("AAPL"),
        {"yahoo": "/v8/finance/chart", "alphavantage": "/query"},
        "/yahoo/v8/",
    ),
}


@pytest.fixture
def universe(live_worker, make_asset, providers):
    """Two stocks whose creation-time backfills have finished, and a clean request log."""
    for symbol in ("AAPL", "MSFT"):
        make_asset(symbol, "stock")
    wait_until(lambda: PriceBar.objects.values("asset").distinct().count() == 2, timeout=60)
    time.sleep(0.5)
    providers.clear_requests()
    return providers


def attempts(providers, path_prefix: str) -> list[datetime]:
    """Start times of the task's attempts: each failed request on ``path_prefix``, then the first success.

    A successful attempt may make several requests (pages, batches); only its first one counts.
    """
    times = []
    for entry in providers.requests():
        if entry["path"].startswith(path_prefix):
            times.append(datetime.fromisoformat(entry["time"]))
            if entry["status"] == 200:
                break
    return times


def stored_rows(task_name: str) -> int:
    if task_name == "quotes.fetch":
        return Quote.objects.count() + PriceBar.objects.filter(timestamp=floor_time(timezone.now(), "1d")).count()
    if task_name == "news.fetch":
        return NewsArticle.objects.count()
    return PriceBar.objects.filter(asset__symbol="AAPL").count()


@pytest.mark.parametrize("task_name", list(CASES))
def test_success_stores_rows(universe, task_name: str) -> None:
    send, _, _ = CASES[task_name]
    send().get(timeout=60)
    assert stored_rows(task_name) > 0


@pytest.mark.parametrize("task_name", list(CASES))
def test_a_transient_fault_is_retried_with_bounded_backoff_then_succeeds(universe, task_name: str) -> None:
    send, faulted, path = CASES[task_name]
    counted, *fallbacks = faulted
    # The counted provider fails twice; its fallbacks keep failing, so only a retry can succeed
    # (however many requests a fallback makes per attempt).
    universe.set_fault(counted, "status_503", count=2, path=faulted[counted])
    for provider in fallbacks:
        universe.set_fault(provider, "status_503", path=faulted[provider])
    result = send()
    result.get(timeout=120)
    times = attempts(universe, path)
    assert len(times) == 3, [(e["path"], e["status"], e["fault"]) for e in universe.requests()]
    delays = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)]
    floor, cap = settings.TASK_RETRY_DELAY_FLOOR, settings.TASK_RETRY_BACKOFF_MAX
    assert all(floor - 0.05 <= delay <= cap + 5 for delay in delays), delays
    assert stored_rows(task_name) > 0


@pytest.mark.parametrize("task_name", list(CASES))
def test_a_permanent_fault_fails_at_once_without_retry(universe, task_name: str) -> None:
    send, faulted, path = CASES[task_name]
    for provider, endpoint in faulted.items():
        universe.set_fault(provider, "bad_key", path=endpoint)
    started = time.monotonic()
    result = send()
    with pytest.raises(Exception) as failure:
        result.get(timeout=60)
    assert isinstance(failure.value, PermanentProviderError), type(failure.value)
    assert time.monotonic() - started < settings.TASK_RETRY_DELAY_FLOOR + 5
    time.sleep(settings.TASK_RETRY_DELAY_FLOOR + 1)  # a retry, had one been scheduled, would have fired
    assert AsyncResult(result.id).state == "FAILURE"
    assert all(e["status"] != 200 for e in universe.requests() if e["path"].startswith(path))


def active_worker_pid(task_id: str) -> int | None:
    """The pid of the pool process running ``task_id``, from the worker's own report."""
    for tasks in (app.control.inspect(timeout=1).active() or {}).values():
        for task in tasks:
            if task["id"] == task_id and task.get("worker_pid"):
                return int(task["worker_pid"])
    return None


@pytest.mark.parametrize("task_name", list(CASES))
def test_a_worker_process_killed_mid_task_is_redelivered_and_writes_once(universe, live_worker, task_name) -> None:
    send, faulted, path = CASES[task_name]
    provider, endpoint = next(iter(faulted.items()))
    universe.set_fault(provider, "hang", count=1, seconds=30, path=endpoint)
    before = stored_rows(task_name)
    result = send()
    pid = None

    def running() -> bool:
        nonlocal pid
        pid = active_worker_pid(result.id)
        return pid is not None

    wait_until(running)
    time.sleep(0.5)  # inside the hanging provider request now
    # Only the busy process: an idle prefork child may hold the pool's shared queue lock, and
    # billiard's non-async pool (the filesystem broker's) cannot recover a lock whose holder died.
    os.kill(pid, signal.SIGKILL)
    result.get(timeout=120)  # the redelivered task completed
    after = stored_rows(task_name)
    assert after > before or task_name != "news.fetch"
    if task_name != "news.fetch":  # the fake newswire publishes as time passes; the others are stable
        send().get(timeout=60)  # running it once more updates rows and adds none
        assert stored_rows(task_name) == after
    assert "WorkerLostError" in live_worker.log() or "signal 9" in live_worker.log()


def test_a_longer_retry_after_from_the_provider_is_honoured(universe) -> None:
    send, faulted, path = CASES["quotes.fetch"]
    wait = settings.TASK_RETRY_DELAY_FLOOR + 3  # longer than the first backoff (2 s, jittered down to the floor)
    for provider, endpoint in faulted.items():
        universe.set_fault(provider, "status_429", count=1, path=endpoint, retry_after=wait)
    send().get(timeout=120)
    times = attempts(universe, path)
    assert len(times) == 2, times
    assert (times[1] - times[0]).total_seconds() >= wait - 0.05
