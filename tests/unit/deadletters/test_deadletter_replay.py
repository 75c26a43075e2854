"""Replay sends after its row commits, cut arguments need a confirmation, permanent errors are said.

Replays send in ``transaction.on_commit``, so these tests run on real transactions (``transactional_db``)
against PostgreSQL: the failing commit is a real one, a deferred constraint checked at COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from kombu.exceptions import OperationalError

from backend import deadletters
from backend.core.celery import app
from backend.deadletters.models import DeadLetter, DeadLetterAction
from backend.providers.errors import PermanentProviderError, TransientProviderError
from tests.fixtures.deadletters import make_dead_letter

pytestmark = pytest.mark.usefixtures("isolated_fallback")


@pytest.fixture
def failing_commit(transactional_db) -> Iterator[None]:
    """Every transaction that writes a history entry fails at COMMIT, as PostgreSQL fails one.

    Each new history row also inserts a row into a table whose deferred foreign key it violates; the
    database checks it only when the transaction commits, after the replay's code has run.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_commit_guard (id int PRIMARY KEY, "
            "ref int REFERENCES test_commit_guard (id) DEFERRABLE INITIALLY DEFERRED)"
        )

    def violate(sender, instance, created, **_):
        if created:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO test_commit_guard VALUES (%s, -1)", [instance.pk])

    post_save.connect(violate, sender=DeadLetterAction, dispatch_uid="test-commit-guard")
    try:
        yield
    finally:
        post_save.disconnect(sender=DeadLetterAction, dispatch_uid="test-commit-guard")
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE test_commit_guard")


def test_a_commit_that_fails_sends_nothing_and_the_next_replay_sends_once(failing_commit, sent) -> None:
    row = make_dead_letter("t-commit")
    with pytest.raises(IntegrityError):
        deadletters.replay(row, actor="cli:ops")

    assert sent == []
    row.refresh_from_db()
    assert row.state == DeadLetter.State.OPEN and row.replay_task_id == ""
    assert not row.actions.exists()  # the attempt's entry went with its transaction

    post_save.disconnect(sender=DeadLetterAction, dispatch_uid="test-commit-guard")
    new_id = deadletters.replay(row, actor="cli:ops")
    assert [call["task_id"] for call in sent] == [new_id]


def test_bulk_replay_stops_on_a_commit_the_database_refused(failing_commit, sent) -> None:
    first, second = make_dead_letter("c-1"), make_dead_letter("c-2")
    result = deadletters.replay_many([first, second], actor="cli:ops")
    assert result.outcomes == {
        "not replayed: the database refused the change": [first.pk],
        "not attempted (stopped after a send failure)": [second.pk],
    }
    assert sent == []


def test_the_row_and_its_task_id_are_written_before_the_send(sent, monkeypatch) -> None:
    row = make_dead_letter("t-order")
    seen: list[tuple[str, str]] = []

    def send_task(name, args=None, kwargs=None, **options):
        # What another process reads at the moment of the send: the committed row.
        committed = DeadLetter.objects.get(pk=row.pk)
        seen.append((committed.state, committed.replay_task_id == options["task_id"]))

    monkeypatch.setattr(app, "send_task", send_task)
    deadletters.replay(row, actor="cli:ops")
    assert seen == [(DeadLetter.State.REPLAYED, True)]


def test_inside_an_outer_transaction_the_send_waits_for_its_commit(sent) -> None:
    row = make_dead_letter("t-outer")
    with transaction.atomic():
        new_id = deadletters.replay(row, actor="cli:ops")
        assert sent == []
    assert [call["task_id"] for call in sent] == [new_id]

    other = make_dead_letter("t-rolled-back")
    with pytest.raises(RuntimeError), transaction.atomic():
        deadletters.replay(other, actor="cli:ops")
        raise RuntimeError("the caller's transaction fails")
    assert len(sent) == 1
    other.refresh_from_db()
    assert other.state == DeadLetter.State.OPEN


def test_a_send_the_broker_refuses_after_the_commit_reopens_the_row(transactional_db, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(app, "send_task", refuse)
    row = make_dead_letter("t-broker")
    with pytest.raises(OperationalError):
        deadletters.replay(row, actor="cli:ops")
    row.refresh_from_db()
    assert (row.state, row.replay_task_id, row.replayed_by, row.replayed_at) == (DeadLetter.State.OPEN, "", "", None)
    action = row.actions.get()
    assert action.result == DeadLetterAction.Result.SEND_FAILED and "not sent: OperationalError" in action.detail


# --- Cut arguments ------------------------------------------------------------------------------------
def test_a_row_with_cut_arguments_replays_only_when_confirmed(sent) -> None:
    row = make_dead_letter("t-cut", arguments_truncated=True, arguments_size=100_014)
    with pytest.raises(deadletters.ReplayRefused, match="kept only part of its arguments"):
        deadletters.replay(row, actor="cli:ops")
    assert sent == []
    new_id = deadletters.replay(row, actor="cli:ops", confirm_truncated=True)
    assert [call["task_id"] for call in sent] == [new_id]
    history = list(row.actions.values_list("result", "detail"))
    assert history[0][0] == "refused" and "100,014 characters" in history[0][1]
    assert history[1] == ("sent", f"{new_id}; truncated arguments, confirmed")


def test_a_bulk_replay_counts_unconfirmed_cut_rows_as_refused(sent) -> None:
    make_dead_letter("b-1")
    cut = make_dead_letter("b-2", arguments_truncated=True, arguments_size=50_000)
    result = deadletters.replay_many(DeadLetter.objects.order_by("pk"), actor="cli:ops")
    assert result.outcomes["refused: truncated arguments, not confirmed"] == [cut.pk] and len(sent) == 1
    again = deadletters.replay_many([cut], actor="cli:ops", confirm_truncated=True)
    assert again.outcomes == {"replayed": [cut.pk]} and len(sent) == 2


# --- Permanent errors -----------------------------------------------------------------------------------
def lineage_of(exc: BaseException) -> list[str]:
    return deadletters.exception_lineage(exc)


@pytest.mark.parametrize(
    ("exception", "permanent"),
    [
        (PermanentProviderError("unknown symbol NOPE", provider="coingecko"), True),
        (TypeError("fetch_quotes() got an unexpected keyword argument 'bogus'"), True),
        (ValueError("bad symbol 'aapl'"), True),
        (TransientProviderError("timeout", provider="yahoo"), False),
        (RuntimeError("something else"), False),
    ],
)
def test_a_permanent_error_warns_that_a_replay_will_fail_the_same_way(db, exception, permanent) -> None:
    row = make_dead_letter(
        "t-hint",
        exception_class=deadletters.exception_class_name(exception),
        exception_lineage=lineage_of(exception),
    )
    warning = deadletters.replay_warning(row)
    assert ("will fail the same way unless its cause was fixed" in warning) is permanent
    assert (type(exception).__name__ in warning) is permanent


def test_the_warning_of_an_unregistered_task_says_which_worker_it_needs(db) -> None:
    row = make_dead_letter("t-unreg", task_name="quotes.fetch_v9", queue="high", exception_class=(
        "celery.exceptions.NotRegistered"), exception_lineage=["celery.exceptions.NotRegistered"])  # fmt: skip
    warning = deadletters.replay_warning(row)
    assert "a worker that has 'quotes.fetch_v9' consumes queue 'high'" in warning
    assert "this deployment's code does not have it either" in warning
    known = make_dead_letter("t-known", task_name="quotes.fetch", exception_class="celery.exceptions.NotRegistered")
    assert "does not have it either" not in deadletters.replay_warning(known)


# --- Refusals before any attempt --------------------------------------------------------------------------
def test_a_refusal_for_lack_of_permission_is_history(db) -> None:
    rows = [make_dead_letter("r-1"), make_dead_letter("r-2")]
    count = deadletters.refuse(rows, kind="replay", actor="admin:viewer", reason="lacks deadletters.replay_deadletter")
    assert count == 2
    actions = list(DeadLetterAction.objects.order_by("pk").values_list("kind", "result", "actor", "detail", "bulk"))
    assert [a[:4] for a in actions] == [
        ("replay", "refused", "admin:viewer", "lacks deadletters.replay_deadletter")
    ] * 2
    assert actions[0][4] and actions[0][4] == actions[1][4]  # one bulk id for one attempt on many rows
