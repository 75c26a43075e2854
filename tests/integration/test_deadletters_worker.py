"""Dead letters end to end, through real worker subprocesses on the configured broker and database.

The worker loads the deliberately failing tasks of ``tests/fixtures/failing_tasks.py`` through
``FINANCEHUB_EXTRA_TASK_MODULES``. Every worker consuming the test queues must know those tasks
(a worker that does not would reject their messages as unregistered), so the module swaps the
session worker for one that loads them, and swaps a plain one back afterwards.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django_celery_results.models import TaskResult

from backend import deadletters
from backend.core.celery import app
from backend.deadletters import storage
from backend.deadletters.models import DeadLetter
from backend.market.models import Quote
from backend.tasks import tasks
from tests.fixtures import failing_tasks
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, require_alive, swapped_worker

pytestmark = pytest.mark.integration

PLANTED = "planted-secret-xyz"
MAX_DELIVERIES = 3
WORKER_ENV = {
    "FINANCEHUB_EXTRA_TASK_MODULES": "tests.fixtures.failing_tasks",
    "TASK_RETRY_DELAY_FLOOR": "1",
    "COINGECKO_API_KEY": PLANTED,
    "DEADLETTER_MAX_DELIVERIES": str(MAX_DELIVERIES),
}


@pytest.fixture(scope="module")
def failing_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    """The session worker, restarted with the failing tasks loaded (and restored plain afterwards)."""
    with swapped_worker(celery_worker_process, WORKER_ENV, django_db_blocker) as worker:
        yield worker


def _clear_fallback() -> None:
    path = Path(settings.DEADLETTER_FALLBACK_FILE)
    path.unlink(missing_ok=True)
    if deadletters.uses_redis():
        storage.redis_client().delete(deadletters.FALLBACK_REDIS_KEY)


@pytest.fixture
def worker(failing_worker: WorkerProcess, transactional_db) -> Iterator[WorkerProcess]:
    """The failing-task worker, alive, with committed data it can see and an empty fallback."""
    require_alive(failing_worker)
    _clear_fallback()
    yield failing_worker
    _clear_fallback()


def dead_letter_of(task_id: str) -> DeadLetter | None:
    return DeadLetter.objects.filter(task_id=task_id).first()


@pytest.mark.both_brokers
def test_retries_exhausted_leave_exactly_one_dead_letter_with_a_traceback(worker) -> None:
    result = failing_tasks.always_transient.delay(["AAPL", "MSFT"])

    assert wait_for(lambda: dead_letter_of(result.id)), worker.log()[-3000:]
    time.sleep(2)  # a second record of the same failure would arrive by now

    rows = list(DeadLetter.objects.filter(task_id=result.id))
    assert len(rows) == 1
    row = rows[0]
    assert row.task_name == "tests.always_transient"
    assert row.exception_class == "backend.providers.errors.TransientProviderError"
    assert row.retries == 2
    assert row.state == DeadLetter.State.OPEN
    assert row.provider_list == ["yahoo"] and row.symbol_list == ["AAPL", "MSFT"]
    assert row.args == [["AAPL", "MSFT"]]
    assert row.queue == "medium" and row.worker == worker.hostname
    assert "Traceback (most recent call last)" in row.traceback
    assert "TransientProviderError: timeout fetching AAPL,MSFT" in row.traceback


@pytest.mark.both_brokers
def test_a_permanent_fault_is_dead_lettered_without_any_retry(worker) -> None:
    result = failing_tasks.permanent_fault.delay("NOPE")

    assert wait_for(lambda: dead_letter_of(result.id)), worker.log()[-3000:]
    row = dead_letter_of(result.id)
    assert row.retries == 0
    assert row.deliveries == 1
    assert row.exception_class == "backend.providers.errors.PermanentProviderError"
    assert row.exception_message == "unknown symbol NOPE"
    assert f"tests.permanent_fault[{result.id}] retry" not in worker.log()


@pytest.mark.both_brokers
def test_a_replay_stores_the_rows_and_marks_the_dead_letter_replayed(worker, make_asset, tmp_path) -> None:
    make_asset("AAPL", "stock")
    make_asset("MSFT", "stock")
    block = tmp_path / "provider-down"
    block.touch()
    failed = failing_tasks.fetch_unless_blocked.delay("stock", ["AAPL", "MSFT"], str(block))
    assert wait_for(lambda: dead_letter_of(failed.id)), worker.log()[-3000:]
    assert Quote.objects.count() == 0

    block.unlink()  # the provider is back
    new_id = deadletters.replay(dead_letter_of(failed.id), actor="test:operator")

    row = dead_letter_of(failed.id)
    assert row.state == DeadLetter.State.REPLAYED
    assert row.replay_task_id == new_id and row.replayed_by == "test:operator" and row.replayed_at
    assert app.AsyncResult(new_id).get(timeout=30)["stored_quotes"] == 2
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == {"AAPL", "MSFT"}
    # The replay succeeded, so the dead letter it came from is resolved.
    assert wait_for(lambda: dead_letter_of(failed.id).state == DeadLetter.State.RESOLVED, timeout=10)
    assert DeadLetter.objects.count() == 1


def test_a_dead_letter_written_while_the_database_is_unreachable_reaches_the_table(worker) -> None:
    """How the outage is produced: on its final attempt the task points its own pool process's
    Django connection at a database that cannot be reached (PostgreSQL: 127.0.0.1 port 1, where
    nothing listens; SQLite: a file in a directory that does not exist) and then raises. Storing
    the result and writing the dead letter both fail in that process, so the record goes to the
    fallback (the Redis list with Redis as the broker, the JSON-lines file otherwise). The
    database itself never stops: the worker's main process and this test still reach it, and
    they are "the database back": the main process flushes the fallback before its own write,
    and the test flushes once more, as the heartbeat would.
    """
    result = failing_tasks.outage_on_last_attempt.delay("ETH")

    assert wait_for(lambda: f"dead letter for tests.outage_on_last_attempt[{result.id}] written to fallback"
                    in worker.log()), worker.log()[-4000:]  # fmt: skip
    deadletters.flush_fallback()

    assert wait_for(lambda: dead_letter_of(result.id)), worker.log()[-4000:]
    row = dead_letter_of(result.id)
    # The cause came through the fallback: the main process only ever saw the database error.
    assert row.exception_class == "backend.providers.errors.TransientProviderError"
    assert row.retries == 2
    assert "timeout fetching ETH" in row.traceback
    assert DeadLetter.objects.filter(task_id=result.id).count() == 1
    assert deadletters.pending_fallback() == 0
    # The pool process finds the database back for its next task.
    assert failing_tasks.echo.delay("after outage").get(timeout=30) == "after outage"


@pytest.mark.both_brokers
def test_a_task_that_kills_its_worker_is_dead_lettered_after_n_deliveries(worker) -> None:
    before = failing_tasks.echo.delay("before").get(timeout=30)
    result = failing_tasks.kill_worker.delay()

    assert wait_for(lambda: dead_letter_of(result.id), timeout=90), worker.log()[-4000:]
    row = dead_letter_of(result.id)
    assert row.exception_class == "backend.deadletters.poison.PoisonMessageError"
    assert row.deliveries == MAX_DELIVERIES + 1  # N runs killed the worker; delivery N+1 was refused
    assert row.retries == 0
    kills = re.findall(r"exited with 'signal 9 \(SIGKILL\)'", worker.log())
    assert len(kills) >= MAX_DELIVERIES
    # Acknowledged, not looping: no further deliveries, and the worker keeps serving.
    time.sleep(2)
    assert len(re.findall(r"exited with 'signal 9 \(SIGKILL\)'", worker.log())) == len(kills)
    assert worker.alive()
    assert before == "before"
    assert [failing_tasks.echo.delay(i).get(timeout=30) for i in range(3)] == [0, 1, 2]
    assert app.AsyncResult(result.id).state == "FAILURE"


# --- Secrets ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def recorded_events() -> Iterator[list[dict]]:
    """Every Celery event (what Flower's task view is built from) while the block runs."""
    events: list[dict] = []
    ready = threading.Event()
    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": events.append})

        def run() -> None:
            consumer = receiver.consume(limit=None, timeout=None, wakeup=False)
            ready.set()
            for _ in consumer:
                if receiver.should_stop:
                    break

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ready.wait(10)
        time.sleep(1)  # the event queue is bound before anything is sent
        try:
            yield events
        finally:
            time.sleep(1)
            receiver.should_stop = True
            thread.join(10)


def _event_text(events: list[dict], task_id: str, kinds: set[str] | None = None) -> str:
    return "\n".join(
        repr(event) for event in events if event.get("uuid") == task_id and (kinds is None or event["type"] in kinds)
    )


def test_no_planted_key_reaches_any_sink(worker, settings) -> None:
    """The worker runs with COINGECKO_API_KEY=planted-secret-xyz; one task fails with that key in its
    message and another is retried with it, both also passing it as ``api_key`` and inside a URL.
    Searched: dead-letter rows, the worker's log file, django-celery-results rows, and the events
    Flower's task view shows (task-received/started/retried/failed from the worker).
    """
    settings.COINGECKO_API_KEY = PLANTED  # the producer knows the key too, as in production
    url = f"https://user:{PLANTED}@pro-api.example/v3?x_cg_pro_api_key={PLANTED}"
    with recorded_events() as events:
        failed = failing_tasks.leak_secret.delay("BTC", api_key=PLANTED, url=url)
        retried = failing_tasks.leak_secret.delay("RETRY", api_key=PLANTED, url=url)
        assert wait_for(lambda: dead_letter_of(failed.id) and dead_letter_of(retried.id)), worker.log()[-4000:]
        assert wait_for(lambda: any(e["type"] == "task-failed" and e.get("uuid") == retried.id for e in events))

    rows = DeadLetter.objects.filter(task_id__in=[failed.id, retried.id])
    assert rows.count() == 2
    for row in rows:
        dumped = repr([row.args, row.kwargs, row.exception_message, row.traceback, row.symbols])
        assert PLANTED not in dumped
        assert deadletters.REDACTED in row.exception_message
        assert row.kwargs["api_key"] == deadletters.REDACTED

    log = worker.log()
    assert failed.id in log and "provider refused key" in log
    assert PLANTED not in log

    results = list(TaskResult.objects.filter(task_id__in=[failed.id, retried.id]).values())
    assert len(results) == 2
    assert PLANTED not in repr(results)

    worker_kinds = {"task-received", "task-started", "task-retried", "task-failed"}
    for task_id in (failed.id, retried.id):
        seen = {e["type"] for e in events if e.get("uuid") == task_id}
        assert {"task-received", "task-failed"} <= seen, seen
        assert PLANTED not in _event_text(events, task_id, worker_kinds)
    assert "task-retried" in {e["type"] for e in events if e.get("uuid") == retried.id}


def test_the_task_sent_event_shows_no_key_passed_as_an_argument(worker, settings) -> None:
    settings.COINGECKO_API_KEY = PLANTED
    with recorded_events() as events:
        result = failing_tasks.echo.apply_async(args=[{"api_key": PLANTED}])
        result.get(timeout=30)
    assert "task-sent" in {e["type"] for e in events if e.get("uuid") == result.id}
    assert PLANTED not in _event_text(events, result.id, {"task-sent"})


def test_a_task_called_with_a_nul_byte_is_dead_lettered_sanitised_and_nothing_is_left_stuck(worker) -> None:
    """PostgreSQL refuses NUL in text and JSON: the dead letter is stored with it escaped, flagged
    ``sanitised``, and neither the fallback nor the parked list keeps anything for ``flush`` to report."""
    result = tasks.fetch_quotes.apply_async(args=("stock", ["AAPL\x00"]))

    assert wait_for(lambda: dead_letter_of(result.id)), worker.log()[-4000:]
    row = dead_letter_of(result.id)
    assert row.sanitised
    assert row.args == ["stock", ["AAPL\\x00"]]
    assert deadletters.pending_fallback() == 0
    assert deadletters.parked_count() == 0
    out = StringIO()
    call_command("deadletters", "flush", stdout=out)
    assert "flushed 0, 0 remaining, 0 parked" in out.getvalue()
    with pytest.raises(deadletters.ReplayRefused, match="escaped characters"):
        deadletters.replay(row, actor="test:operator")
