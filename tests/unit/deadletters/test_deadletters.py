"""Dead letters: idempotent capture, the fallback and its flush, admin actions, the command."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from backend import deadletters
from backend.deadletters import REDACTED, poison, storage
from backend.deadletters.models import DeadLetter
from backend.providers.errors import PermanentProviderError
from tests.fixtures import failing_tasks
from tests.fixtures.deadletters import PLANTED, break_database, make_dead_letter, make_record

pytestmark = pytest.mark.usefixtures("isolated_fallback")


# --- Capture --------------------------------------------------------------------------------------
def test_the_failure_handler_writes_a_redacted_dead_letter(db) -> None:
    exc = PermanentProviderError(f"bad key {PLANTED}", provider="coingecko")
    deadletters.on_task_failure(
        sender=failing_tasks.permanent_fault,
        task_id="abc",
        exception=exc,
        args=["crypto", ["BTC", "ETH"]],
        kwargs={"api_key": PLANTED},
        einfo=None,
    )
    row = DeadLetter.objects.get(task_id="abc")
    assert row.task_name == "tests.permanent_fault"
    assert row.exception_class == "backend.providers.errors.PermanentProviderError"
    assert row.provider_list == ["coingecko"]
    assert row.symbol_list == ["BTC", "ETH"]
    assert row.kwargs == {"api_key": REDACTED}
    assert PLANTED not in json.dumps([row.args, row.kwargs, row.exception_message, row.traceback])
    assert PLANTED not in str(exc)  # scrubbed in place before Celery logs it or sends the event


def test_the_same_failure_recorded_twice_is_one_row(db) -> None:
    record = make_record("dup")
    assert deadletters.apply_record(record) is True
    assert deadletters.apply_record(record) is False
    assert DeadLetter.objects.filter(task_id="dup").count() == 1


def test_a_repeated_failure_updates_times_and_counts_but_keeps_the_first_cause(db) -> None:
    first = make_record("rep", failed_at="2025-01-01T10:00:00+00:00", deliveries=1, exception_message="cause")
    later = make_record("rep", failed_at="2025-01-01T11:00:00+00:00", deliveries=3, exception_class="OperationalError")
    deadletters.apply_record(later)
    deadletters.apply_record(first)  # order does not matter
    row = DeadLetter.objects.get(task_id="rep")
    assert row.first_failure_at.hour == 10 and row.last_failure_at.hour == 11
    assert row.deliveries == 3
    assert row.exception_message == "cause"


# --- Fallback -------------------------------------------------------------------------------------
def test_an_unreachable_database_sends_the_record_to_the_fallback_file(db, monkeypatch, isolated_fallback) -> None:
    break_database(monkeypatch)
    assert deadletters.record_failure(make_record("lost?")) == "fallback"
    lines = isolated_fallback.read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == ["lost?"]
    assert not DeadLetter.objects.exists()


def test_flush_moves_fallback_records_into_the_table_and_is_idempotent(db, isolated_fallback) -> None:
    for task_id in ("a", "b", "a"):
        deadletters.write_fallback(make_record(task_id))
    with isolated_fallback.open("a") as handle:
        handle.write('{"torn": \n')

    result = deadletters.flush_fallback()

    assert (result.flushed, result.remaining, result.parked) == (3, 0, 1)
    assert sorted(DeadLetter.objects.values_list("task_id", flat=True)) == ["a", "b"]
    assert isolated_fallback.read_text() == ""
    assert deadletters.flush_fallback().flushed == 0
    assert DeadLetter.objects.count() == 2


def test_a_flush_during_the_outage_keeps_every_record(db, monkeypatch, isolated_fallback) -> None:
    deadletters.write_fallback(make_record("kept"))
    break_database(monkeypatch)
    result = deadletters.flush_fallback()
    assert (result.flushed, result.remaining) == (0, 1)
    assert "kept" in isolated_fallback.read_text()


def test_the_next_failure_write_flushes_the_fallback_first(db, isolated_fallback) -> None:
    deadletters.write_fallback(make_record("earlier"))
    assert deadletters.record_failure(make_record("now")) == "database"
    assert set(DeadLetter.objects.values_list("task_id", flat=True)) == {"earlier", "now"}


def test_the_fallback_uses_redis_when_redis_is_the_broker(db, monkeypatch) -> None:
    class FakeRedis:
        def __init__(self) -> None:
            self.lists: dict[str, list[bytes]] = {}

        def rpush(self, key, value):
            self.lists.setdefault(key, []).append(value.encode() if isinstance(value, str) else value)

        def lrange(self, key, start, end):
            return list(self.lists.get(key, []))[start : end + 1]

        def lrem(self, key, count, value):
            self.lists[key].remove(value)

        def llen(self, key):
            return len(self.lists.get(key, []))

    fake = FakeRedis()
    monkeypatch.setattr(storage, "uses_redis", lambda: True)
    monkeypatch.setattr(storage, "redis_client", lambda: fake)
    monkeypatch.setattr(poison, "prune_delivery_counters", lambda: None)

    assert deadletters.write_fallback(make_record("r1")).startswith("redis list")
    assert deadletters.flush_fallback().flushed == 1
    assert fake.llen(deadletters.FALLBACK_REDIS_KEY) == 0
    assert DeadLetter.objects.filter(task_id="r1").exists()


# --- Poison cap -----------------------------------------------------------------------------------
class FakeTask:
    name = "tests.poison"

    def __init__(self, task_id: str, retries: int = 0) -> None:
        self.request = type("Req", (), {"id": task_id, "retries": retries, "is_eager": False, "called_directly": False})


def test_the_poison_cap_refuses_a_message_delivered_more_than_n_times(settings) -> None:
    settings.DEADLETTER_MAX_DELIVERIES = 3
    task = FakeTask("poison-1")
    for _ in range(3):
        deadletters.count_delivery("poison-1", 0)  # three deliveries whose worker died mid-task
    with pytest.raises(deadletters.PoisonMessageError, match="delivered 4 times"):
        with deadletters.delivery_guard(task):
            pytest.fail("the body must not run")


def test_a_delivery_that_finishes_clears_its_count(settings) -> None:
    settings.DEADLETTER_MAX_DELIVERIES = 1
    task = FakeTask("fine-1")
    with deadletters.delivery_guard(task):
        assert deadletters.current_deliveries("fine-1", 0) == 1
    assert deadletters.current_deliveries("fine-1", 0) == 0
    with deadletters.delivery_guard(task):  # a second delivery after a clean one still runs
        pass


def test_a_finished_count_is_deleted_with_the_next_count_not_in_a_round_trip_of_its_own(
    settings, monkeypatch, redis_url: str
) -> None:
    # The Redis counter (files are cleared at once); the run's Redis, which the provider-state tests use too.
    settings.CELERY_BROKER_URL = redis_url
    monkeypatch.setattr(storage, "uses_redis", lambda: True)
    settings.DEADLETTER_MAX_DELIVERIES = 3
    storage._redis_clients.clear()
    client = storage.redis_client()
    finished = poison.DELIVERY_REDIS_PREFIX + "done-1:0"
    client.delete(finished)
    with deadletters.delivery_guard(FakeTask("done-1")):
        pass
    assert client.exists(finished)  # still there: no DEL round trip after the body ...
    assert deadletters.current_deliveries("done-1", 0) == 0  # ... but this process treats it as cleared
    assert deadletters.count_delivery("next-1", 0) == 1
    assert not client.exists(finished)  # gone with the next delivery's single call
    assert client.ttl(poison.DELIVERY_REDIS_PREFIX + "next-1:0") > 0
    deadletters.clear_deliveries("next-1", 0)
    storage._redis_clients.clear()


def test_a_retry_is_counted_as_a_new_message(settings) -> None:
    settings.DEADLETTER_MAX_DELIVERIES = 1
    deadletters.count_delivery("retried", 0)
    with deadletters.delivery_guard(FakeTask("retried", retries=1)):
        pass


# --- Admin ----------------------------------------------------------------------------------------
def changelist() -> str:
    return reverse("admin:deadletters_deadletter_changelist")


def test_admin_lists_filters_and_shows_the_traceback(admin_client, db) -> None:
    row = make_dead_letter("t-a", symbols=["AAPL"])
    make_dead_letter("t-b", symbols=["BTC"], task_name="quotes.dispatch", args=["crypto"])

    listed = admin_client.get(changelist(), {"symbol": "AAPL", "state": "open"})
    assert listed.status_code == 200
    assert list(listed.context["cl"].queryset) == [row]
    assert admin_client.get(changelist(), {"q": "t-b"}).context["cl"].result_count == 1
    assert admin_client.get(changelist(), {"exception": "ProviderError"}).context["cl"].result_count == 2

    detail = admin_client.get(reverse("admin:deadletters_deadletter_change", args=[row.pk]))
    assert "Traceback (most recent call last)" in detail.content.decode()


def test_admin_replay_resends_the_original_task_and_records_who_and_when(admin_client, admin_user, sent) -> None:
    rows = [make_dead_letter("t-1"), make_dead_letter("t-2", args=["crypto", ["BTC"]], queue="")]
    response = admin_client.post(changelist(), {"action": "replay_selected", "_selected_action": [r.pk for r in rows]})
    assert response.status_code == 302
    assert [(c["name"], c["args"]) for c in sent] == [
        ("quotes.fetch", ["stock", ["AAPL", "MSFT"]]),
        ("quotes.fetch", ["crypto", ["BTC"]]),
    ]
    assert sent[0]["queue"] == "high" and "queue" not in sent[1]
    for row, call in zip(rows, sent, strict=True):
        row.refresh_from_db()
        assert row.state == DeadLetter.State.REPLAYED
        assert row.replay_task_id == call["task_id"]
        assert row.replayed_by == f"admin:{admin_user.username}"
        assert row.replayed_at is not None


def test_admin_discard_records_who_and_when(admin_client, admin_user) -> None:
    row = make_dead_letter()
    admin_client.post(changelist(), {"action": "discard_selected", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.state == DeadLetter.State.DISCARDED
    assert row.discarded_by == f"admin:{admin_user.username}" and row.discarded_at is not None


@pytest.mark.parametrize("action", ["replay_selected", "discard_selected"])
def test_admin_actions_need_their_own_permission(client, viewer, sent, action: str) -> None:
    row = make_dead_letter()
    page = client.get(changelist())
    assert page.status_code == 200
    assert action not in page.content.decode()

    client.post(changelist(), {"action": action, "_selected_action": [row.pk]})

    row.refresh_from_db()
    assert row.state == DeadLetter.State.OPEN
    assert sent == []


def test_admin_replay_with_only_the_replay_permission(client, viewer, sent) -> None:
    viewer.user_permissions.add(Permission.objects.get(codename="replay_deadletter"))
    row = make_dead_letter()
    page = client.get(changelist()).content.decode()
    assert "replay_selected" in page and "discard_selected" not in page
    client.post(changelist(), {"action": "replay_selected", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.state == DeadLetter.State.REPLAYED and row.replayed_by == "admin:viewer"


def test_bulk_replay_is_throttled(db, sent) -> None:
    rows = [make_dead_letter(f"t-{i}") for i in range(4)]
    waits: list[float] = []
    result = deadletters.replay_many(rows, actor="test", rate=2, sleep=waits.append)
    assert len(result.done) == 4
    assert len(waits) == 3 and all(0.4 < w <= 0.5 for w in waits)


def test_a_row_with_redacted_arguments_is_not_replayed(db, sent) -> None:
    row = make_dead_letter(kwargs={"api_key": REDACTED})
    with pytest.raises(deadletters.ReplayRefused, match="redacted"):
        deadletters.replay(row, actor="test")
    assert sent == []


# --- Command --------------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = StringIO()
    call_command("deadletters", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_command_lists_and_filters(db) -> None:
    make_dead_letter("t-a", symbols=["AAPL"])
    make_dead_letter("t-b", symbols=["BTC"], providers=["coingecko"])
    assert "2 dead letters" in run("list")
    out = run("list", "--symbol", "btc")
    assert "1 dead letters" in out and "BTC" in out
    assert "1 dead letters" in run("list", "--provider", "yahoo", "--exception", "TransientProviderError")
    assert "0 dead letters" in run("list", "--since", "2999-01-01")


def test_the_command_shows_one_dead_letter_with_its_traceback(db) -> None:
    row = make_dead_letter()
    out = run("show", str(row.pk))
    assert "task_id: t-1" in out and "Traceback (most recent call last)" in out


def test_the_command_dry_run_changes_nothing(db, sent) -> None:
    row = make_dead_letter()
    assert "dry run: nothing sent" in run("replay", str(row.pk), "--dry-run")
    assert "dry run: nothing changed" in run("discard", "--all-matching", "--state", "open", "--dry-run")
    row.refresh_from_db()
    assert row.state == DeadLetter.State.OPEN
    assert sent == []


def test_the_command_replays_and_discards(db, sent) -> None:
    first, second = make_dead_letter("t-1"), make_dead_letter("t-2")
    assert re.search(r"^replayed +1 ", run("replay", str(first.pk)), re.M)
    assert re.search(r"^discarded +1 ", run("discard", "--all-matching", "--state", "open"), re.M)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == DeadLetter.State.REPLAYED and first.replayed_by.startswith("cli:")
    assert second.state == DeadLetter.State.DISCARDED and second.discarded_by.startswith("cli:")
    assert re.search(r"^skipped: discarded +1 ", run("replay", str(second.pk)), re.M)


def test_the_command_refuses_to_act_on_everything_by_accident(db) -> None:
    with pytest.raises(CommandError, match="ids"):
        run("discard")
    with pytest.raises(CommandError, match="filter"):
        run("replay", "--all-matching")


def test_the_command_flushes_the_fallback(db) -> None:
    deadletters.write_fallback(make_record("from-file"))
    assert "dry run: would flush 1" in run("flush", "--dry-run")
    assert not DeadLetter.objects.exists()
    assert "flushed 1, 0 remaining" in run("flush")
    assert DeadLetter.objects.filter(task_id="from-file").exists()
