"""Outages and long waits on a real worker: a database outage is waited out, never dead-lettered, and a
provider's long Retry-After is honoured in hops no longer than the retry cap.

The worker reaches PostgreSQL through a proxy the test cuts for a while (connections reset, new
ones refused) — a real outage for that worker, while the test itself keeps its own connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from backend import deadletters
from backend.deadletters import storage
from backend.deadletters.models import DeadLetter
from backend.tasks.models import DispatchRun, Heartbeat
from backend.tasks.tasks import dispatch_quotes, fetch_news, heartbeat
from tests.fixtures.outage_proxy import OutageProxy
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, _test_database_url, report, swapped_worker

# The outage is cut in a TCP connection: it needs PostgreSQL (SQLite is a file).
pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

OUTAGE_SECONDS = 10
ASSETS = 20


def _clear_fallback() -> None:
    if deadletters.uses_redis():
        storage.redis_client().delete(deadletters.FALLBACK_REDIS_KEY)
    settings.DEADLETTER_FALLBACK_FILE.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def proxied_worker(
    celery_worker_process: WorkerProcess, django_db_blocker
) -> Iterator[tuple[WorkerProcess, OutageProxy]]:
    """The session worker, restarted to reach the database through a proxy the test can cut."""
    db = settings.DATABASES["default"]
    with OutageProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)) as proxy:
        parts = urlsplit(_test_database_url())
        netloc = parts.netloc.rsplit("@", 1)
        auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
        proxied = urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))
        env = {
            "DATABASE_URL": proxied,
            "QUOTE_BATCH_SIZE": "5",
            "TASK_RETRY_DELAY_FLOOR": "1",
            "TASK_RETRY_BACKOFF_MAX": "4",
        }
        with swapped_worker(celery_worker_process, env, django_db_blocker) as worker:
            yield worker, proxy


def test_tasks_picked_up_during_a_database_outage_run_when_it_is_back(
    proxied_worker, transactional_db, providers, make_asset
) -> None:
    worker, proxy = proxied_worker
    assert worker.alive(), worker.log()[-3000:]
    _clear_fallback()
    for i in range(ASSETS):
        make_asset(f"C{i:02d}", "crypto")
    time.sleep(3)  # let the creation-time backfills go by before the outage

    proxy.cut()
    cut_at = time.monotonic()
    try:
        dispatch = dispatch_quotes.delay("crypto")  # an operator's run-now: 4 batches of 5
        beat = heartbeat.delay()
        # The worker takes both while the database is away (without track_started nothing is
        # written before the body; the body meets the outage and retries).
        assert wait_for(lambda: "infrastructure fault" in worker.log(), timeout=OUTAGE_SECONDS), worker.log()[-3000:]
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
    finally:
        proxy.restore()
    back_at = time.monotonic()

    summary = dispatch.get(timeout=90)
    assert summary["assets"] == ASSETS and summary["batches"] == 4
    run = DispatchRun.objects.get(pk=summary["run"])
    assert wait_for(lambda: DispatchRun.objects.get(pk=run.pk).status == "done"), worker.log()[-3000:]
    recovered = time.monotonic() - back_at
    run.refresh_from_db()
    assert (run.done, run.failed, run.missing) == (ASSETS, 0, 0)
    assert beat.get(timeout=60)["component"] == "beat"
    assert Heartbeat.objects.filter(component="beat").exists()
    # Nothing was dead-lettered: neither in the table nor parked in the fallback.
    assert not DeadLetter.objects.filter(task_name__in=["quotes.dispatch", "quotes.fetch", "maintenance.heartbeat"])
    assert deadletters.pending_fallback() == 0
    report(
        f"database outage {OUTAGE_SECONDS} s: run-now of {ASSETS} assets done {ASSETS}/{ASSETS} "
        f"{recovered:.1f} s after the database came back; 0 dead letters"
    )


@pytest.mark.both_brokers
def test_a_retry_after_longer_than_the_retry_cap_is_waited_out_in_hops(
    proxied_worker, transactional_db, providers, make_asset
) -> None:
    worker, _ = proxied_worker  # its retry cap is 4 s
    make_asset("AAPL")  # news is fetched about the active assets
    providers.set_fault("newsapi", "status_429", count=1, path="/v2/everything", retry_after=10)
    started = time.monotonic()
    result = fetch_news.delay()
    result.get(timeout=90)
    waited = time.monotonic() - started
    log = worker.log()
    # One retry, deferred 10 s as the provider asked, in hops of at most the cap: not retries burnt every 4 s.
    assert log.count(f"news.fetch[{result.id}] retry") == 1, log[-3000:]
    assert f"news.fetch[{result.id}] waits" in log
    assert waited >= 9.5
    news_requests = [r for r in providers.requests() if r["path"].startswith("/newsapi/")]
    assert [r["status"] for r in news_requests][:2] == [429, 200]
