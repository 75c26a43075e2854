"""Messages Celery cannot run, through a real worker on the real broker and database: each one ends
as a dead letter holding the raw message, the reason and the queue, never as a log line only.

The five messages of issue 20 item 1 (``tests/fixtures/wire.py``) go raw onto the ``high`` queue of
the session worker: a task name no worker has registered, a pickle body, a body that is not JSON, a
message without a ``task`` header, and ``quotes.fetch`` with a keyword it does not take. Then a
rolling deploy: a task the running worker does not have is dead-lettered, a worker that has it
replaces it, and Replay runs the task once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from backend import deadletters
from backend.core.celery import app
from backend.deadletters.models import DeadLetter
from tests.fixtures import wire
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, require_alive, swapped_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(celery_worker_process: WorkerProcess, transactional_db) -> Iterator[WorkerProcess]:
    """The session worker (it knows the production tasks only), alive, with committed data it can see."""
    yield require_alive(celery_worker_process)


def letter_with(marker: str, origin: str) -> DeadLetter | None:
    """The dead letter of one wire message: its origin, and its marker somewhere in what it kept."""
    for row in DeadLetter.objects.filter(origin=origin):
        if marker in json.dumps([row.message, row.args, row.kwargs]):
            return row
    return None


@pytest.mark.both_brokers
def test_every_message_a_worker_cannot_run_becomes_one_dead_letter(worker) -> None:
    messages = wire.poison_messages()
    marker = messages[0].marker
    for message in messages:
        wire.publish(app, message)

    def captured() -> list[DeadLetter | None]:
        return [letter_with(m.marker, m.origin) for m in messages]

    assert wait_for(lambda: all(captured()), timeout=60), (
        f"{[(m.label, bool(r)) for m, r in zip(messages, captured(), strict=True)]}\n{worker.log()[-4000:]}"
    )
    time.sleep(2)  # a second record of any of them would be here by now
    rows = captured()
    assert DeadLetter.objects.count() == len(messages)  # one each, nothing else
    for message, row in zip(messages, rows, strict=True):
        assert row.queue == "high", message.label
        assert row.state == DeadLetter.State.OPEN
        assert wire.PLANTED_KEY not in json.dumps([row.message, row.args, row.kwargs, row.exception_message])
        if message.task_id:
            assert row.task_id == message.task_id, message.label
        if message.origin != "task":
            assert row.message["content_type"] == message.content_type, message.label
            assert marker in row.message["body"], message.label
            assert row.exception_message, message.label
        assert (deadletters.replay_refusal(row) is None) == message.replayable, message.label
    unregistered, pickled, not_json, no_header, bad_keyword = rows
    assert unregistered.task_name == "quotes.fetch_v2" and unregistered.exception_name == "NotRegistered"
    assert unregistered.args == ["stock", ["AAPL"]] and unregistered.kwargs == {"reason": f"renamed task {marker}"}
    assert unregistered.message["headers"]["api_key"] == deadletters.REDACTED
    assert pickled.exception_name == "ContentDisallowed" and pickled.task_name == "quotes.fetch"
    assert not_json.exception_name == "DecodeError" and deadletters.REDACTED in not_json.message["body"]
    assert no_header.task_name == "" and no_header.message["headers"] == {"x-sender": "a foreign producer"}
    assert bad_keyword.exception_class == "builtins.TypeError" and "bogus" in bad_keyword.exception_message
    # Replaying either replayable one as it stands would fail the same way: both say so.
    assert "will fail the same way" in deadletters.replay_warning(bad_keyword)
    assert "consumes queue 'high'" in deadletters.replay_warning(unregistered)
    # The ones that cannot be re-sent say why, and can be discarded.
    with pytest.raises(deadletters.ReplayRefused, match="could not be decoded"):
        deadletters.replay(not_json, actor="test:ops")
    assert deadletters.discard(pickled, actor="test:ops")
    # The worker goes on serving.
    assert worker.alive() and app.control.ping(destination=[worker.hostname], timeout=5)


def test_a_task_unknown_to_the_running_worker_runs_once_when_replayed_after_the_deploy(
    worker, celery_worker_process, django_db_blocker, tmp_path
) -> None:
    ran = tmp_path / "ran.txt"
    sent = app.send_task("tests.append_line", args=[str(ran), "replayed"], queue="medium")
    assert wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).exists(), timeout=60), worker.log()[-3000:]
    row = DeadLetter.objects.get(task_id=sent.id)
    assert (row.origin, row.queue, row.task_name) == ("unregistered", "medium", "tests.append_line")
    assert not ran.exists()

    # The deploy: a worker that has the task replaces the one that did not.
    with swapped_worker(celery_worker_process, {"FINANCEHUB_EXTRA_TASK_MODULES": "tests.fixtures.failing_tasks"},
                        django_db_blocker) as deployed:  # fmt: skip
        new_id = deadletters.replay(row, actor="test:ops")
        assert app.AsyncResult(new_id).get(timeout=30) == 1
        assert wait_for(lambda: DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.RESOLVED, timeout=15), (
            deployed.log()[-3000:]
        )
        time.sleep(1)
    assert ran.read_text().splitlines() == ["replayed"]  # once
    assert DeadLetter.objects.count() == 1


def test_a_100000_character_argument_leaves_a_bounded_row_marked_cut(worker, settings) -> None:
    """The issue's measurement: such a task stored a 100 KB row. Now the row keeps DEADLETTER_KEEP_CHARS."""
    from django.db import connection

    sent = app.send_task("quotes.fetch", args=["stock", ["A" * 100_000]], queue="high")  # refused: not a symbol
    assert wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).exists(), timeout=60), worker.log()[-3000:]
    row = DeadLetter.objects.get(task_id=sent.id)
    if connection.vendor == "postgresql":
        measured = "octet_length(args::text) + octet_length(kwargs::text), pg_column_size(args)"
    else:  # SQLite (make run's) stores JSON as its text: the bytes stored are the text's
        measured = "length(CAST(args AS BLOB)) + length(CAST(kwargs AS BLOB)), length(CAST(args AS BLOB))"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {measured} FROM tasks_deadletter WHERE id = %s", [row.pk])
        text_bytes, stored_bytes = cursor.fetchone()
    assert row.arguments_truncated and row.arguments_size > 100_000
    assert text_bytes <= settings.DEADLETTER_KEEP_CHARS + 100 and stored_bytes <= settings.DEADLETTER_KEEP_CHARS
    assert row.args[0] == "stock" and row.args[1][0].startswith("AAAA")
    with pytest.raises(deadletters.ReplayRefused, match="confirm"):
        deadletters.replay(row, actor="test:ops")
