"""A worker or beat started on the bare core app (``celery -A backend.core``) stops at once, taking nothing.

The bare app registers no task: a worker on it would take every queued message and end each as an
unknown task. The right app is the composition root's (``celery -A backend.stack``).
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from backend.core.celery import app
from backend.stack.commands import BEAT_SCHEDULER, celery_command, worker_command
from tests.fixtures.worker import REPO_DIR, subprocess_env

pytestmark = pytest.mark.integration

REFUSAL = "configuration error: the Celery app backend.core carries no tasks"


def _queued(queue: str) -> int:
    """Messages waiting in ``queue`` on the configured broker."""
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue, passive=True).message_count


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a Celery command line of the tests' environment to its end (two minutes at most)."""
    return subprocess.run(command, cwd=REPO_DIR, env=subprocess_env(), capture_output=True, text=True, timeout=120)


def test_worker_on_bare_app_exits_and_leaves_the_queue_as_it_was() -> None:
    queue = f"bare-app-{uuid.uuid4().hex[:8]}"
    app.send_task("quotes.dispatch", queue=queue)
    try:
        assert _queued(queue) == 1
        done = _run(worker_command(queue, app="backend.core", pool="solo", hostname=f"{queue}@%h"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert REFUSAL in done.stderr
        assert "celery -A backend.stack" in done.stderr
        assert _queued(queue) == 1  # the message is still there for a right worker
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


# Celery builds beat's scheduler (the DatabaseScheduler reads its tables and adds its default entry)
# before the beat_init signal that refuses: the test database must exist, whichever test ran first.
@pytest.mark.django_db(transaction=True)
def test_beat_on_bare_app_exits(tmp_path) -> None:
    schedule = str(tmp_path / "beat")
    done = _run(celery_command("beat", "-S", BEAT_SCHEDULER, "--pidfile=", "--schedule", schedule, app="backend.core"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert REFUSAL in done.stdout + done.stderr
