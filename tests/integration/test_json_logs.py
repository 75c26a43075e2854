"""LOG_FORMAT=json on real processes: every line a worker, beat, Flower and gunicorn write parses as
JSON, and a task's lines name the task (id, name, queue, symbols) and the provider it was calling.

The worker runs real quote fetches against the fake provider server with CoinMarketCap down, so
one batch fails over, retries and is dead-lettered: the lines operators most need to find.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from backend.deadletters.models import DeadLetter
from backend.stack.commands import celery_command
from backend.tasks.models import DispatchRun
from backend.tasks.tasks import dispatch_quotes
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import (
    REPO_DIR,
    WorkerProcess,
    require_alive,
    start_beat,
    stop_worker,
    subprocess_env,
    swapped_worker,
)

pytestmark = pytest.mark.integration

PLANTED = "planted-json-secret-7788"
JSON_ENV = {"LOG_FORMAT": "json", "CELERY_QUIET": "1", "COINGECKO_API_KEY": PLANTED}
QUICK = {"TASK_MAX_RETRIES": "1", "TASK_RETRY_DELAY_FLOOR": "1", "TASK_RETRY_BACKOFF_MAX": "1"}


@pytest.fixture(scope="module")
def json_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    with swapped_worker(celery_worker_process, {**JSON_ENV, **QUICK}, django_db_blocker) as worker:
        yield worker


@pytest.fixture
def worker(json_worker: WorkerProcess, transactional_db, providers) -> WorkerProcess:
    return require_alive(json_worker)


def parsed(text: str) -> list[dict]:
    """Every line as JSON; a line that is not JSON fails the test, naming it."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} is not JSON: {line[:300]!r}")
    return records


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_briefly(command: list[str], log: Path, ready, env: dict[str, str]) -> str:
    """Start ``command`` with ``env``, wait until ``ready()`` holds, stop it; returns its output."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_DIR, env=subprocess_env(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for(ready, timeout=45), log.read_text()[-3000:]
    finally:
        process.terminate()
        process.wait(20)
    return log.read_text()


def test_a_workers_lines_are_json_and_name_the_task_queue_symbols_and_provider(worker, providers, make_asset) -> None:
    for symbol in ("BTC", "ETH"):
        make_asset(symbol, "crypto")
    make_asset("ONLYCMC", "crypto", binance_symbol="", coingecko_id="")  # only CoinMarketCap serves it
    providers.set_fault("coinmarketcap", "status_500")

    run_id = dispatch_quotes.delay("crypto").get(timeout=60)["run"]
    assert wait_for(lambda: DispatchRun.objects.get(pk=run_id).status != DispatchRun.Status.RUNNING)
    assert wait_for(lambda: DeadLetter.objects.filter(task_name="quotes.fetch").exists())
    time.sleep(0.5)  # the failure's own log lines follow the dead letter's row
    # Read while the worker runs: Celery prints its shutdown notice outside logging.
    records = parsed(worker.log())

    fetch_ids = set(TaskResult.objects.filter(task_name="quotes.fetch").values_list("task_id", flat=True))
    fetch_lines = [r for r in records if r.get("task_name") == "quotes.fetch"]
    assert fetch_ids and {r["task_id"] for r in fetch_lines} == fetch_ids  # every fetch that ran, and only those
    assert all(r["queue"] in settings.TASK_QUEUES for r in fetch_lines)
    assert any("ONLYCMC" in r.get("symbols", []) for r in fetch_lines)
    # Celery's own result lines carry the fields too (logged between task_prerun and task_postrun).
    trace = [r for r in fetch_lines if r["logger"] == "celery.app.trace"]
    assert any("retry" in r["message"].lower() for r in trace) and any("raised" in r["message"] for r in trace)
    failover = [r for r in fetch_lines if r.get("provider") == "coinmarketcap"]
    assert failover, "no line names the provider that failed"
    dispatch = [r for r in records if r.get("task_name") == "quotes.dispatch"]
    assert dispatch and "symbols" not in dispatch[0]  # a dispatcher is given a class, not symbols
    assert not any(r.get("task_id") for r in records if r["logger"] == "celery.worker.strategy")
    assert PLANTED not in worker.log()


def test_beat_flower_and_gunicorn_write_json_lines_too(transactional_db, tmp_path) -> None:
    beat = start_beat("json", JSON_ENV)
    try:
        assert wait_for(lambda: "Starting" in beat.log(), timeout=45), beat.log()[-3000:]
    finally:
        stop_worker(beat)
    beat_lines = parsed(beat.log())
    assert any(r["logger"] == "celery.beat" for r in beat_lines)

    port = free_port()
    flower_env = {**JSON_ENV, "FLOWER_BASIC_AUTH": "ops:pw-for-tests"}
    flower_log = run_briefly(
        celery_command("flower", "--address=127.0.0.1", f"--port={port}"),
        tmp_path / "flower.log",
        lambda: _answers(f"http://127.0.0.1:{port}/", 401),
        flower_env,
    )
    assert parsed(flower_log), "Flower wrote nothing"

    port = free_port()
    gunicorn = [
        sys.executable, "-m", "gunicorn", "backend.stack.wsgi:application",
        "--config", "python:backend.stack.gunicorn_conf", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--access-logfile", "-", "--no-control-socket",
    ]  # fmt: skip
    web_log = run_briefly(
        gunicorn,
        tmp_path / "web.log",
        lambda: _answers(f"http://127.0.0.1:{port}/health/live?apikey={PLANTED}", 200),
        JSON_ENV,
    )
    web_lines = parsed(web_log)
    assert any(r["logger"] == "gunicorn.error" and "Listening at" in r["message"] for r in web_lines)
    access = [r for r in web_lines if r["logger"] == "gunicorn.access"]
    assert access and "apikey=[redacted]" in access[0]["message"] and PLANTED not in web_log


def _answers(url: str, status: int) -> bool:
    try:
        return httpx.get(url, headers={"Host": "localhost"}, timeout=2).status_code == status
    except httpx.HTTPError:
        return False
