"""Wire poison: messages no worker can run reach the queues; each ends as one dead letter, nothing else hurt.

The five messages of issue 20 (``tests/fixtures/wire.py``) go raw onto ``high`` beside a quote run: a task
name no worker has, a pickle body, a body that is not JSON, a message with no ``task`` header, and
``quotes.fetch`` with a keyword it does not take. Before the fix Celery logged the first four and
dropped them. Then a rolling deploy: a worker without a task gets it, a worker with it replaces that
one, and Replay runs the task once.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.fixtures import wire

from . import observe
from .accounting import DeadLetterSeen, Finding, History, check
from .scenario import explain, finish, judge, start_quote_run

pytestmark = pytest.mark.chaos

# What Celery's consumer logs when it discards a message (each must now leave a dead letter too).
DISCARD_LOG_LINES = {
    "unregistered": "Received unregistered task",
    "rejected": "Refusing to deserialize untrusted content",
    "undecodable": "Can't decode message body",
    "unknown": "Received and deleted unknown message",
}


def letter_of(message: wire.WireMessage):
    """The dead letter a wire message became (found by its origin and its marker), or None."""
    for row in observe.dead_letter_rows():
        if row.origin == message.origin and message.marker in repr((row.message, row.args, row.kwargs)):
            return row
    return None


def wire_poison_run(stack, *, assets: int, bound: float):
    run = start_quote_run(stack, assets=assets, batch_size=20)
    messages = wire.poison_messages()
    for message in messages:
        wire.publish(stack.app, message)
    sent_at = time.monotonic()

    def all_dead_lettered() -> bool:
        return all(letter_of(m) is not None for m in messages)

    def one_dead_letter_each() -> Finding:
        rows = [letter_of(m) for m in messages]
        wrong = [
            m.label
            for m, row in zip(messages, rows, strict=True)
            if row is None or row.queue != "high" or not row.exception_message
            or (m.origin != "task" and not row.message.get("body"))
        ]  # fmt: skip
        return Finding(
            "each wire message is one dead letter with its reason, queue and raw message",
            not wrong,
            f"{len(messages) - len(wrong)} of {len(messages)}" + (f"; wrong or missing: {wrong}" if wrong else ""),
        )

    def every_discard_kept() -> Finding:
        logs = stack.logs()
        logged = {origin: line in logs for origin, line in DISCARD_LOG_LINES.items()}
        kept = {m.origin: letter_of(m) is not None for m in messages if m.origin in DISCARD_LOG_LINES}
        return Finding(
            "every message Celery logged as discarded became a dead letter",
            all(logged.values()) and logged == kept,
            f"discarded {sum(logged.values())}, kept as dead letters {sum(kept.values())}",
        )

    def no_secret_kept() -> Finding:
        leaked = [row.pk for row in observe.dead_letter_rows() if wire.PLANTED_KEY in repr((row.message, row.args))]
        return Finding("no secret in a kept message", not leaked, f"rows with the planted key: {leaked or 'none'}")

    return finish(
        run, f"wire poison (5 messages) beside {assets} assets", fault_over=sent_at, bound=bound,
        expected_dead_letters=len(messages), checks=[one_dead_letter_each, every_discard_kept, no_secret_kept],
        until=all_dead_lettered, patience=bound + 10,
    )  # fmt: skip


@pytest.mark.chaos_short
def test_wire_poison_is_dead_lettered_while_other_work_completes__short(stack) -> None:
    verdict = wire_poison_run(stack, assets=60, bound=60)
    assert verdict.ok, explain(verdict, stack)


@pytest.mark.chaos_short
def test_without_the_capture_the_checker_goes_red() -> None:
    """What the wire-poison run recorded before the fix (measured: only the bad keyword left a dead
    letter, Celery logged and dropped the other four), fed to the checker: it must go red."""
    symbols = frozenset(f"C{i:04d}" for i in range(60))
    before_the_fix = History(
        scenario="doctored: wire poison before the fix",
        expected=symbols,
        stored=symbols,
        recovery_bound=60,
        recovery_seconds=None,  # the run waited in vain for the four dead letters
        dead_letters=(DeadLetterSeen("quotes.fetch", "builtins.TypeError"),),
        expected_dead_letters=5,
        findings=(
            Finding("every message Celery logged as discarded became a dead letter", False, "discarded 4, kept 0"),
        ),
    )
    verdict = check(before_the_fix)
    assert not verdict.ok
    assert "1 dead letters, 5 expected" in verdict.failures and "never recovered" in verdict.failures


def wait(condition, timeout: float) -> bool:
    """Poll ``condition`` (reads of the private database) until it holds or ``timeout`` passes."""
    return observe.wait_recovered(condition, time.monotonic(), timeout, timeout) is not None


@pytest.mark.chaos_short
def test_a_rolling_deploy_replays_a_task_the_old_worker_did_not_have__short(stack) -> None:
    """The old worker has no ``tests.append_line``; its message is dead-lettered as unregistered. The new
    worker has it; ``manage.py deadletters replay`` (as an operator runs it) makes it run exactly once."""
    ran = stack.var_dir / "append-line.txt"
    old = stack.start_worker({"FINANCEHUB_EXTRA_TASK_MODULES": ""})
    task_id = stack.send("tests.append_line", args=(str(ran), "deployed"), queue="medium")
    wait(lambda: observe.dead_letter_rows(), 30)
    letters = observe.dead_letter_rows()
    letter = letters[0] if len(letters) == 1 else None
    stack.stop_process(old)  # the deploy: the old worker stops, the new one starts
    stack.start_worker()

    replayed_at = time.monotonic()
    summary = stack.manage("deadletters", "replay", str(letter.pk)) if letter else "(nothing to replay)"

    def ran_lines() -> list[str]:
        return ran.read_text().splitlines() if ran.exists() else []

    def resolved() -> bool:
        return bool(ran_lines()) and observe.dead_letter_rows()[0].state == "resolved"

    recovery = observe.wait_recovered(resolved, replayed_at, 30, 40)
    time.sleep(2)  # a second run of the replay would show by now
    runs = len(ran_lines())
    rows = observe.dead_letter_rows()
    captured = letter is not None and letter.task_id == task_id
    sent_line = re.search(r"^replayed +1 .*$", summary, re.M)
    findings = (
        Finding(
            "the old worker dead-lettered the unknown task as unregistered, on its queue",
            captured and (letter.origin, letter.queue) == ("unregistered", "medium"),
            f"{letter.origin} on {letter.queue or '-'}" if letter else f"{len(letters)} dead letters",
        ),
        Finding("the replay was sent", bool(sent_line), sent_line.group(0) if sent_line else summary[-300:]),
        Finding("the replay ran exactly once", runs == 1, f"ran {runs} time(s)"),
        Finding(
            "the dead letter is resolved, no second one",
            len(rows) == 1 and rows[0].state == "resolved",
            ", ".join(f"#{r.pk} {r.state}" for r in rows) or "none",
        ),
    )
    history = History(
        scenario="rolling deploy: an unregistered task replayed on the new worker",
        expected=frozenset({task_id}),
        stored=frozenset({task_id}) if runs else frozenset(),
        recovery_bound=30,
        recovery_seconds=recovery,
        duplicated_rows=max(0, runs - 1),
        dead_letters=observe.dead_letters(stack),
        expected_dead_letters=1,
        findings=findings,
    )
    verdict = judge(history, stack)
    assert verdict.ok, explain(verdict, stack)
