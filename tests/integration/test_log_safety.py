"""A value carrying CR/LF forges no line in a real worker's log: ours, Celery's success and failure lines.

The worker loads ``tests.fixtures.failing_tasks`` for its ``echo`` task, whose result Celery logs in its
"Task ... succeeded in ...: <result>" line (Celery's saferepr keeps raw newlines).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from backend.tasks.tasks import backfill_history, fetch_quotes
from tests.fixtures import failing_tasks
from tests.fixtures.worker import WorkerProcess, swapped_worker

pytestmark = pytest.mark.integration

FORGED_LINE = "2026-12-01 00:00:00,000 ERROR forged.logger all quotes stored"
HOSTILE = f"AAPL\r\n{FORGED_LINE}"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture(scope="module")
def echo_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    """The session worker, restarted with the test tasks loaded (and restored plain afterwards)."""
    env = {"FINANCEHUB_EXTRA_TASK_MODULES": "tests.fixtures.failing_tasks"}
    with swapped_worker(celery_worker_process, env, django_db_blocker) as worker:
        yield worker


def _wait_for_lines(worker: WorkerProcess, needle: str, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in worker.log().splitlines() if needle in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_crlf_in_task_arguments_and_results_forges_no_log_line(echo_worker, transactional_db, make_asset) -> None:
    make_asset("AAPL")
    assert failing_tasks.echo.delay(HOSTILE).get(timeout=30) == HOSTILE
    with pytest.raises(ValueError, match="is not a valid symbol"):
        backfill_history.delay(HOSTILE).get(timeout=30)
    with pytest.raises(ValueError, match="not valid symbols"):
        fetch_quotes.delay("stock", [HOSTILE]).get(timeout=30)

    escaped = "AAPL\\r\\n" + FORGED_LINE
    # Celery's success line for echo, and the failure lines of both refusals (which cut the value short).
    assert len(_wait_for_lines(echo_worker, "AAPL\\r\\n2026-12-01", 3)) >= 3, echo_worker.log()[-3000:]
    log = echo_worker.log()
    assert FORGED_LINE in log  # the text is there, but never at the start of a line of its own
    assert not [line for line in log.splitlines() if line.startswith(FORGED_LINE)]
    assert all(escaped in line for line in log.splitlines() if FORGED_LINE in line)
    assert "\r" not in log
    # After start-up every line is a record or an indented traceback line under one.
    records = log[log.index(" ready.") :].splitlines()[1:]
    assert [line for line in records if not (RECORD_START.match(line) or line.startswith("    "))] == []
