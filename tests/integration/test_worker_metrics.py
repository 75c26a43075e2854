"""Task and provider metrics written by a real prefork worker reach the web's /metrics, behind the token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from backend.market.models import PriceBar
from backend.tasks.liveness import live_workers
from backend.tasks.tasks import dispatch_quotes, fetch_quotes

pytestmark = pytest.mark.integration


def samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape, keyed by (sample name, sorted labels)."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def wait_for_backfill(symbol: str, timeout: float = 30) -> None:
    """Until the backfill a new asset triggers has stored its bars."""
    deadline = time.monotonic() + timeout
    while not PriceBar.objects.filter(asset__symbol=symbol).exists():
        assert time.monotonic() < deadline, f"no backfill of {symbol}"
        time.sleep(0.2)


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def total(scrape: dict, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in scrape.items() if n == name and labels.items() <= dict(ls).items())


def test_a_worker_run_counts_sent_received_started_succeeded_wait_runtime_and_provider_calls(
    live_worker, make_asset, client
) -> None:
    make_asset("AAPL")
    make_asset("BTC", "crypto")
    before = samples(client)

    # Crypto is always in session: its dispatcher sends a fetch to `high` whatever the time of day.
    # Stocks may be "not due" outside their session, so their batch is sent directly.
    dispatch_quotes.delay("crypto").get(timeout=60)
    fetch_quotes.apply_async(args=("stock", ["AAPL"]), queue="high").get(timeout=60)
    deadline = time.monotonic() + 30  # the fetch batches run after their dispatchers returned
    while time.monotonic() < deadline:
        after = samples(client)
        done = total(after, "financehub_celery_tasks_succeeded_total", task="quotes.fetch")
        if done - total(before, "financehub_celery_tasks_succeeded_total", task="quotes.fetch") >= 2:
            break
        time.sleep(0.5)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("financehub_celery_tasks_sent_total", task="quotes.dispatch", queue="medium") == 1
    assert grew("financehub_celery_tasks_sent_total", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_tasks_received_total", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_tasks_started_total", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_tasks_succeeded_total", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_task_runtime_seconds_count", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_task_queue_wait_seconds_count", task="quotes.fetch", queue="high") == 2
    assert grew("financehub_celery_task_queue_wait_seconds_bucket", task="quotes.fetch", le="+Inf") == 2
    assert grew("financehub_provider_requests_total", provider="yahoo", operation="fetch_quotes", outcome="ok") == 1
    assert grew("financehub_provider_requests_total", provider="binance", operation="fetch_quotes", outcome="ok") == 1
    assert grew("financehub_provider_request_seconds_count", provider="yahoo", operation="fetch_quotes") == 1
    assert value(after, "financehub_celery_tasks_running", task="quotes.fetch", queue="high") == 0
    assert value(after, "financehub_celery_workers", queue="high") >= 1


def test_retries_are_counted_by_reason_and_provider_errors_by_class(live_worker, providers, make_asset, client) -> None:
    make_asset("AAPL")
    wait_for_backfill("AAPL")  # its bar requests must not take the faults armed for the quote fetch
    before = samples(client)
    for provider in ("yahoo", "alphavantage"):
        providers.set_fault(provider, "status_503", count=1)  # the first attempt fails on both, the retry works
    result = fetch_quotes.apply_async(args=("stock", ["AAPL"]), queue="high")
    assert result.get(timeout=60)["stored"] == ["AAPL"]
    after = samples(client)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("financehub_celery_tasks_retried_total", task="quotes.fetch", queue="high") == 1
    reasons = {dict(ls)["reason"] for (n, ls) in after if n == "financehub_celery_tasks_retried_total"}
    assert "TransientProviderError" in reasons, reasons  # the batch's own retry, for the failed subset
    calls = {
        (dict(ls)["provider"], dict(ls)["outcome"]): grew(n, **dict(ls))
        for (n, ls) in after
        if n == "financehub_provider_requests_total"
        and dict(ls)["provider"] in ("yahoo", "alphavantage")
        and dict(ls)["operation"] == "fetch_quotes"
    }
    failed_calls = {key: n for key, n in calls.items() if n and key[1] not in ("ok", "partial")}
    assert failed_calls, calls  # the first attempt's provider errors, by class
    assert sum(n for key, n in calls.items() if key[1] == "ok") == 1, calls


def test_a_final_failure_is_counted_by_exception(live_worker, providers, make_asset, client) -> None:
    make_asset("AAPL")
    wait_for_backfill("AAPL")
    labels = {"task": "quotes.fetch", "queue": "high"}
    before = total(samples(client), "financehub_celery_tasks_failed_total", **labels)
    for provider in ("yahoo", "alphavantage"):
        providers.set_fault(provider, "bad_key")  # permanent: no retry, the batch fails at once
    with pytest.raises(Exception):  # noqa: B017 - the counts below say which exception
        fetch_quotes.apply_async(args=("stock", ["AAPL"]), queue="high").get(timeout=30)
    # The result is stored before the failure signal runs: give the worker a moment.
    deadline = time.monotonic() + 10
    while (failed := total(samples(client), "financehub_celery_tasks_failed_total", **labels) - before) < 1:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert failed == 1
    exceptions = {dict(ls)["exception"] for (n, ls) in samples(client) if n == "financehub_celery_tasks_failed_total"}
    assert exceptions & {"PermanentProviderError", "InvalidKeyError"}, exceptions


def test_metrics_need_the_scrape_token(client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {settings.METRICS_TOKEN}").status_code == 401


def test_workers_publish_the_queues_they_consume(live_worker) -> None:
    served = live_workers()
    assert all(live_worker.hostname in served[q] for q in settings.TASK_QUEUES), served


def test_every_metric_is_documented(live_worker, client) -> None:
    operations = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    names = {f"{n}_total" if f"`{n}_total`" in operations else n for n in names if n.startswith("financehub_")}
    assert len(names) >= 20
    assert sorted(n for n in names if f"`{n}`" not in operations) == []
