"""Task behaviour on a real Celery worker, in process: pytest-celery's ``celery_app`` and ``celery_worker``.

A test app on an in-memory broker, a worker thread consuming high, medium and low, and tasks declared
the way ``backend/tasks/tasks.py`` declares them (``ReliableTask``, ``RETRY_POLICY``, routes from
``routing``). What runs here is Celery's own machinery: autoretry and its backoff, the broker message's
queue and priority, the signals every process connects (priority stamp, log fields, dead-letter
capture). Integration tests do the same against a worker subprocess on Redis and PostgreSQL; here each
test starts and stops its own worker thread (a few seconds, most of it the worker's shutdown).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from celery.contrib.testing.worker import TestWorkController

from backend.common import logcontext
from backend.deadletters.models import DeadLetter
from backend.market.models import Quote
from backend.providers.errors import TransientProviderError
from backend.providers.models import Quote as QuoteRecord
from backend.providers.models import QuoteBatch
from backend.providers.orchestrator import ProviderChain
from backend.providers.pauses import PauseBoard
from backend.tasks import quotes
from backend.tasks.policy import ReliableTask
from backend.tasks.routing import WorkKind, route_for
from backend.tasks.sources import AssetSource
from backend.tasks.tasks import RETRY_POLICY, fetch_quotes
from tests.fixtures.deadletters import PLANTED

COINS = ["ADA", "BTC", "ETH", "SOL"]


@pytest.fixture(scope="session")
def celery_config() -> dict[str, Any]:
    """The platform's queues and serialisation on the test app's in-memory broker (no default priority:
    a message sent without one gets it from the platform's publish hook, ``tasks/priority.py``)."""
    from django.conf import settings

    return {
        "task_queues": settings.CELERY_TASK_QUEUES,
        "task_default_queue": settings.CELERY_TASK_DEFAULT_QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "broker_connection_retry_on_startup": True,
        # The in-memory broker is polled; its default second per poll would be most of each test.
        "broker_transport_options": {"polling_interval": 0.01},
    }


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    """The queues a Procfile worker consumes, in its order."""
    return {"queues": ("high", "medium", "low"), "perform_ping_check": False}


@pytest.fixture
def fast_retries(settings) -> None:
    """The platform's retry clamp, scaled down: a floor of 0.2 s, a cap of 0.4 s."""
    settings.TASK_RETRY_DELAY_FLOOR = 0.2
    settings.TASK_RETRY_BACKOFF_MAX = 0.4


def test_transient_faults_are_retried_with_backoff_then_succeed(celery_app, celery_worker, fast_retries) -> None:
    runs: list[tuple[int, float]] = []

    @celery_app.task(base=ReliableTask, bind=True, name="test.flaky", **RETRY_POLICY)
    def flaky(self: ReliableTask) -> str:
        runs.append((self.request.retries, time.monotonic()))
        if len(runs) < 3:
            raise TransientProviderError("yahoo: HTTP 503", provider="yahoo")
        return "stored"

    celery_worker.reload()  # the worker thread learns the task declared above
    assert flaky.apply_async().get(timeout=20) == "stored"
    assert [retries for retries, _ in runs] == [0, 1, 2]
    gaps = [later - earlier for (_, earlier), (_, later) in zip(runs, runs[1:], strict=False)]
    # Full jitter may draw 0 s; the floor holds every retry back at least 0.2 s, the cap keeps it short.
    assert all(0.2 <= gap < 2 for gap in gaps), gaps


def test_a_permanent_fault_is_not_retried(celery_app, celery_worker, fast_retries) -> None:
    from backend.providers.errors import PermanentProviderError

    runs: list[int] = []

    @celery_app.task(base=ReliableTask, bind=True, name="test.refused", **RETRY_POLICY)
    def refused(self: ReliableTask) -> None:
        runs.append(self.request.retries)
        raise PermanentProviderError("unknown symbol ZZZZ", provider="yahoo")

    celery_worker.reload()
    with pytest.raises(PermanentProviderError):
        refused.apply_async().get(timeout=20)
    assert runs == [0]


def test_routed_work_arrives_on_its_queue_with_its_priority_and_unrouted_work_last(celery_app, celery_worker) -> None:
    assert isinstance(celery_worker, TestWorkController)  # Celery's in-process worker, not a container
    seen: dict[str, tuple[str, int]] = {}

    @celery_app.task(bind=True, name="test.where")
    def where(self: Any, label: str) -> None:
        info = self.request.delivery_info
        seen[label] = (info["routing_key"], info["priority"])

    celery_worker.reload()
    backfill = route_for(WorkKind.BACKFILL)
    where.apply_async(("backfill",), **backfill.as_options()).get(timeout=20)
    where.apply_async(("urgent",), queue="high", priority=0).get(timeout=20)
    where.apply_async(("unrouted",), queue="medium").get(timeout=20)  # a .delay()-style send: no priority
    assert seen == {"backfill": ("low", 9), "urgent": ("high", 0), "unrouted": ("medium", 9)}
    assert backfill.as_options() == {"queue": "low", "priority": 9}


def test_a_running_task_logs_with_its_id_name_queue_and_symbols(celery_app, celery_worker) -> None:
    fields: list[dict[str, Any]] = []

    @celery_app.task(bind=True, name="test.logs")
    def logs(self: Any, asset_class: str, symbols: list[str]) -> None:
        fields.append(dict(logcontext.current()))

    celery_worker.reload()
    result = logs.apply_async(("stock", ["AAPL", "MSFT"]), queue="high")
    result.get(timeout=20)
    assert fields == [{"task_id": result.id, "task_name": "test.logs", "queue": "high", "symbols": ["AAPL", "MSFT"]}]


@pytest.mark.django_db(transaction=True)
def test_a_task_that_finally_fails_becomes_one_redacted_dead_letter(
    celery_app, celery_worker, fast_retries, isolated_fallback
) -> None:
    @celery_app.task(base=ReliableTask, bind=True, name="test.exhausted", **{**RETRY_POLICY, "max_retries": 2})
    def exhausted(self: ReliableTask, asset_class: str, symbols: list[str], api_key: str = "") -> None:
        raise TransientProviderError(f"yahoo: HTTP 503 for key {api_key}", provider="yahoo")

    celery_worker.reload()
    result = exhausted.apply_async(("stock", ["AAPL"]), {"api_key": PLANTED}, queue="medium")
    with pytest.raises(TransientProviderError):
        result.get(timeout=30)
    deadline = time.monotonic() + 10
    while not DeadLetter.objects.filter(task_id=result.id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    row = DeadLetter.objects.get(task_id=result.id)
    assert (row.task_name, row.queue, row.retries, row.state) == ("test.exhausted", "medium", 2, "open")
    assert row.exception_name == "TransientProviderError" and row.provider_list == ["yahoo"]
    assert row.symbol_list == ["AAPL"] and row.args == ["stock", ["AAPL"]]
    assert PLANTED not in row.exception_message and PLANTED not in str(row.kwargs)
    assert DeadLetter.objects.count() == 1


class Coins:
    """A crypto quote provider that serves every symbol it is asked for (and counts the requests)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def fetch_quotes(self, symbols: Sequence[str]) -> QuoteBatch:
        self.calls += 1
        now = datetime.now(UTC)
        return QuoteBatch(quotes=tuple(QuoteRecord(s, Decimal("2.5"), now, self.name) for s in symbols))


@contextmanager
def kept_paused(board: PauseBoard, providers: Sequence[str], seconds: float) -> Iterator[None]:
    """Other batches' 429s, as the chaos run saw them: every provider re-paused (0.3 s) every 0.1 s."""
    until = time.monotonic() + seconds
    done = threading.Event()

    def rearm() -> None:
        while time.monotonic() < until and not done.is_set():
            for provider in providers:
                board.pause(provider, 0.3, reason="another batch's 429 (test)")
            time.sleep(0.1)

    for provider in providers:
        board.pause(provider, 0.3, reason="another batch's 429 (test)")
    thread = threading.Thread(target=rearm, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.fixture
def paused_chain(monkeypatch, make_asset) -> PauseBoard:
    """Four crypto assets and a Binance > CoinGecko chain on an in-process pause board."""
    for symbol in COINS:
        make_asset(symbol, "crypto")
    board = PauseBoard()
    chain = ProviderChain([Coins("binance"), Coins("coingecko")], pauses=board)
    monkeypatch.setattr(quotes, "quote_source", lambda asset_class: AssetSource(asset_class, chain, chain))
    return board


def quote_fetch(celery_app, runs: list[int]) -> Any:
    """``quotes.fetch``'s own body on the test app, noting each run's ``request.retries``."""
    body = fetch_quotes.__wrapped__.__func__

    @celery_app.task(base=ReliableTask, bind=True, name="test.quotes.fetch", **RETRY_POLICY)
    def fetch(self: ReliableTask, asset_class: str, symbols: list[str], **kwargs: Any) -> dict[str, object]:
        runs.append(self.request.retries)
        return body(self, asset_class, symbols, **kwargs)

    return fetch


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_providers_stay_paused_past_its_retry_budget_ends_stored_with_its_retries_unspent(
    celery_app, celery_worker, fast_retries, isolated_fallback, paused_chain
) -> None:
    runs: list[int] = []
    fetch = quote_fetch(celery_app, runs)
    celery_worker.reload()

    # Ordinary retries (0.2-0.4 s apart) would spend all 5 in about 2 s; the pauses last 3.5 s.
    with kept_paused(paused_chain, ("binance", "coingecko"), seconds=3.5):
        result = fetch.apply_async(("crypto", COINS), queue="medium")
        summary = result.get(timeout=30)

    assert summary["stored"] == COINS and summary["source"] == "binance"
    assert len(runs) > RETRY_POLICY["max_retries"] + 1, runs  # more attempts than the retry budget allows
    assert set(runs) == {0}, runs  # every one that asked nobody was deferred, not retried
    assert Quote.objects.filter(asset__symbol__in=COINS).count() == len(COINS)
    assert not DeadLetter.objects.filter(task_id=result.id).exists()


@pytest.mark.django_db(transaction=True)
def test_past_its_deferral_budget_an_attempt_that_asked_nobody_is_an_ordinary_retry(
    celery_app, celery_worker, fast_retries, isolated_fallback, paused_chain, settings
) -> None:
    settings.TASK_MAX_DEFERRALS = 2
    runs: list[int] = []
    fetch = quote_fetch(celery_app, runs)
    celery_worker.reload()

    with kept_paused(paused_chain, ("binance", "coingecko"), seconds=15):
        result = fetch.apply_async(("crypto", COINS), queue="medium")
        with pytest.raises(TransientProviderError):
            result.get(timeout=30)

    # Two deferrals (retries kept at 0), then the five retries: the standard end, a dead letter.
    assert runs == [0, 0, 0, 1, 2, 3, 4, 5], runs
    deadline = time.monotonic() + 10
    while not DeadLetter.objects.filter(task_id=result.id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert DeadLetter.objects.get(task_id=result.id).retries == 5
