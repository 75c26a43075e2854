"""Dead letters as issue 14 asks: every failed provider, exception lineage, replay links and
outcomes, the history of actions, bulk summaries, and fallback records that can never get stuck."""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse

from backend import deadletters
from backend.deadletters import FALLBACK_REDIS_KEY, parking, rows, storage
from backend.deadletters.models import DeadLetter, DeadLetterAction
from backend.providers.errors import AllProvidersFailedError, PermanentProviderError
from tests.fixtures import failing_tasks
from tests.fixtures.deadletters import PLANTED, make_dead_letter, make_record

pytestmark = pytest.mark.usefixtures("isolated_fallback")


@dataclass(frozen=True)
class Failure:
    """Shaped like contract P's ProviderFailure(provider, error, message)."""

    provider: str
    error: str
    message: str


def chain_failure() -> AllProvidersFailedError:
    exc = AllProvidersFailedError("every provider failed for 2 quotes")
    exc.failures = (
        Failure("yahoo", "TransientProviderError", "yahoo: HTTP 503 from https://y.test/q"),
        Failure("alphavantage", "TransientProviderError", f"alphavantage: HTTP 503 apikey={PLANTED}"),
    )
    return exc


def run(*args: str) -> str:
    out = StringIO()
    call_command("deadletters", *args, stdout=out, stderr=out)
    return out.getvalue()


def capture(exc: BaseException, task_id: str = "chain-1", args=("stock", ["AAPL", "MSFT"])) -> DeadLetter:
    deadletters.on_task_failure(
        sender=failing_tasks.always_transient, task_id=task_id, exception=exc, args=list(args), kwargs={}
    )
    return DeadLetter.objects.get(task_id=task_id)


# --- Providers and exception lineage --------------------------------------------------------------
def test_every_provider_of_a_failed_chain_is_recorded_with_its_reason(db) -> None:
    row = capture(chain_failure())
    assert row.provider_list == ["yahoo", "alphavantage"]
    assert [(f["provider"], f["error"]) for f in row.provider_failures] == [
        ("yahoo", "TransientProviderError"),
        ("alphavantage", "TransientProviderError"),
    ]
    assert PLANTED not in str(row.provider_failures)


def test_a_single_provider_error_names_its_provider(db) -> None:
    row = capture(PermanentProviderError("unknown symbol NOPE", provider="coingecko"), task_id="one")
    assert row.provider_list == ["coingecko"]
    assert row.provider_failures[0]["error"] == "PermanentProviderError"


def test_the_exception_lineage_is_stored_dotted_and_shown_bare(db) -> None:
    row = capture(chain_failure())
    assert row.exception_class == "backend.providers.errors.AllProvidersFailedError"
    assert row.exception_name == "AllProvidersFailedError"
    assert row.lineage_names[:3] == ["AllProvidersFailedError", "TransientProviderError", "ProviderError"]
    builtin = capture(TypeError("bad"), task_id="typeerror")
    assert builtin.exception_class == "builtins.TypeError" and builtin.exception_name == "TypeError"


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        ("TransientProviderError", {"chain"}),
        ("backend.providers.errors.TransientProviderError", {"chain"}),
        ("ProviderError", {"chain", "permanent"}),
        ("AllProvidersFailedError", {"chain"}),
        ("Exception", {"chain", "permanent", "typeerror"}),
        ("ProviderErr", set()),  # a prefix of a name is not the name
    ],
)
def test_an_exception_filter_matches_the_class_and_its_subclasses(db, exception: str, expected: set[str]) -> None:
    capture(chain_failure(), task_id="chain")
    capture(PermanentProviderError("no", provider="coingecko"), task_id="permanent")
    capture(TypeError("bad"), task_id="typeerror")
    found = set(deadletters.filter_dead_letters(exception=exception).values_list("task_id", flat=True))
    assert found == expected


def test_a_provider_filter_matches_any_provider_that_failed(db) -> None:
    capture(chain_failure(), task_id="chain")
    assert run("list", "--provider", "alphavantage").strip().endswith("1 dead letters")
    assert run("list", "--provider", "yahoo").strip().endswith("1 dead letters")
    assert run("list", "--provider", "yah").strip().endswith("0 dead letters")


def test_a_record_from_before_providers_existed_keeps_its_one_provider(db) -> None:
    row = make_dead_letter("old", providers=[], provider="binance", exception_lineage=[])
    assert row.provider_list == ["binance"]
    assert deadletters.filter_dead_letters(exception="TransientProviderError").filter(pk=row.pk).exists()


# --- Replay links, outcomes and history -----------------------------------------------------------
def test_a_replay_that_fails_again_is_linked_both_ways_and_marks_the_original(db, sent) -> None:
    original = make_dead_letter("orig")
    new_id = deadletters.replay(original, actor="cli:ops")
    again = make_dead_letter(new_id, replay_of="orig", worker="w1@host")

    original.refresh_from_db()
    assert again.replay_of == original and original.replayed_as == again
    assert original.state == DeadLetter.State.FAILED_AGAIN
    assert [link.pk for link in again.replay_chain()] == [original.pk, again.pk]
    assert [link.pk for link in original.replay_chain()] == [original.pk, again.pk]
    outcome = original.actions.get(kind=DeadLetterAction.Kind.OUTCOME)
    assert (outcome.result, outcome.actor) == (DeadLetterAction.Result.FAILED_AGAIN, "worker:w1@host")


def test_a_failed_replay_without_the_header_is_linked_by_its_task_id(db, sent) -> None:
    original = make_dead_letter("orig")
    new_id = deadletters.replay(original, actor="cli:ops")
    again = make_dead_letter(new_id)  # e.g. recorded by Celery's internal-error path, no headers
    assert again.replay_of_id == original.pk


def test_a_replay_that_succeeds_marks_the_original_succeeded_in_its_history(db, sent) -> None:
    original = make_dead_letter("orig")
    deadletters.replay(original, actor="cli:ops")
    request = type("Req", (), {"id": "r-2", "hostname": "w2@host", "deadletter_replay_of": "orig"})()
    sender = type("Task", (), {"request": request})()
    deadletters.on_task_success(sender=sender)
    original.refresh_from_db()
    assert original.state == DeadLetter.State.RESOLVED
    assert original.get_state_display() == "replay succeeded"
    assert list(original.actions.values_list("kind", "result", "actor")) == [
        ("replay", "sent", "cli:ops"),
        ("outcome", "succeeded", "worker:w2@host"),
    ]


def test_every_action_is_history_refusals_included(db, sent) -> None:
    row = make_dead_letter("t-h")
    deadletters.replay(row, actor="cli:a")
    with pytest.raises(deadletters.ReplayRefused):
        deadletters.replay(row, actor="cli:b")
    assert not deadletters.discard(row, actor="admin:c")
    history = list(row.actions.values_list("actor", "kind", "result"))
    assert history == [("cli:a", "replay", "sent"), ("cli:b", "replay", "refused"), ("admin:c", "discard", "refused")]


# --- Bulk summaries -------------------------------------------------------------------------------
def test_bulk_replay_prints_a_summary_by_outcome_and_the_dry_run_prints_the_same(db, sent) -> None:
    make_dead_letter("a")
    make_dead_letter("b")
    make_dead_letter("c", kwargs={"api_key": deadletters.REDACTED})
    deadletters.replay(make_dead_letter("d"), actor="cli:earlier")
    sent.clear()

    args = ("replay", "--all-matching", "--task", "quotes.fetch")
    dry = run(*args, "--dry-run")
    assert "dry run: nothing sent" in dry and sent == []
    real = run(*args)
    assert len(sent) == 2
    for out in (dry, real):
        assert re.search(r"^replayed +2 ", out, re.M)
        assert re.search(r"^skipped: replayed +1 ", out, re.M)
        assert re.search(r"^refused: redacted arguments +1 ", out, re.M)
        assert re.search(r"^total +4$", out, re.M)
    bulk = re.search(r"^bulk (\S+)$", real, re.M).group(1)
    assert DeadLetterAction.objects.filter(bulk=bulk).count() == 4


def test_bulk_replay_shows_a_progress_bar(db, sent) -> None:
    for i in range(3):
        make_dead_letter(f"p-{i}")
    err = StringIO()
    call_command("deadletters", "replay", "--all-matching", "--state", "open", stdout=StringIO(), stderr=err)
    assert "replay: 100%" in err.getvalue() and "3/3" in err.getvalue()


def test_a_broker_refusal_stops_the_bulk_run_and_is_history(transactional_db, monkeypatch) -> None:
    from kombu.exceptions import OperationalError

    from backend.core.celery import app

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(app, "send_task", refuse)
    first, second = make_dead_letter("s-1"), make_dead_letter("s-2")
    result = deadletters.replay_many([first, second], actor="cli:ops")
    assert result.outcomes == {"send failed": [first.pk], "not attempted (stopped after a send failure)": [second.pk]}
    first.refresh_from_db()
    assert first.state == DeadLetter.State.OPEN
    assert first.actions.get().result == DeadLetterAction.Result.SEND_FAILED


# --- Storable records and parking (PostgreSQL) ----------------------------------------------------
def test_a_nul_byte_is_escaped_and_the_row_flagged_sanitised(db, sent) -> None:
    row = make_dead_letter("nul", args=["stock", ["AAPL\x00"]], exception_message="bad \x00 symbol")
    assert row.sanitised
    assert row.args == ["stock", ["AAPL\\x00"]] and row.exception_message == "bad \\x00 symbol"
    with pytest.raises(deadletters.ReplayRefused, match="escaped characters"):
        deadletters.replay(row, actor="cli:ops")
    assert sent == []


@pytest.mark.postgresql
def test_without_escaping_postgresql_refuses_the_record_and_it_is_parked_not_retried(db, monkeypatch) -> None:
    monkeypatch.setattr(rows, "storable", lambda record: (record, False))
    where = deadletters.record_failure(make_record("raw-nul", args=["stock", ["AAPL\x00"]]))
    assert where == "parked"
    assert deadletters.pending_fallback() == 0
    [entry] = deadletters.parked_records()
    assert "raw-nul" in entry["record"] and "refused by the database" in entry["reason"]


@pytest.fixture
def real_redis_fallback(monkeypatch, redis_url: str):
    """The fallback and parking on the test Redis, as in a worker; emptied before and after."""
    monkeypatch.setattr(storage, "uses_redis", lambda: True)
    client = storage.redis_client()
    client.delete(FALLBACK_REDIS_KEY, parking.PARKED_REDIS_KEY)
    yield client
    client.delete(FALLBACK_REDIS_KEY, parking.PARKED_REDIS_KEY)


def test_flush_stores_a_nul_record_sanitised_and_parks_an_unreadable_one_never_reporting_them_again(
    db, real_redis_fallback
) -> None:
    real_redis_fallback.rpush(FALLBACK_REDIS_KEY, make_record("nul-1", args=["stock", ["MSFT\x00"]]).to_json())
    real_redis_fallback.rpush(FALLBACK_REDIS_KEY, make_record("bad-time", failed_at="yesterday").to_json())
    real_redis_fallback.rpush(FALLBACK_REDIS_KEY, '{"torn": ')

    assert "flushed 1, 0 remaining, 2 parked" in run("flush")
    second = run("flush")
    assert "flushed 0, 0 remaining, 0 parked" in second
    assert "2 records parked in all" in second
    assert DeadLetter.objects.get(task_id="nul-1").sanitised
    listing = run("parked")
    assert "unreadable" in listing and "bad-time" in listing and "2 parked records" in listing
    assert "cleared 2" in run("parked", "--clear")
    assert deadletters.parked_count() == 0


# --- Admin ----------------------------------------------------------------------------------------
def change_page(row: DeadLetter) -> str:
    return reverse("admin:deadletters_deadletter_change", args=[row.pk])


def test_the_detail_page_has_replay_and_discard_and_no_delete(admin_client, db, sent) -> None:
    row = capture(chain_failure())
    page = admin_client.get(change_page(row)).content.decode()
    assert 'value="Replay"' in page and 'value="Discard"' in page
    assert "deletelink" not in page
    assert "yahoo: HTTP 503" in page and "AllProvidersFailedError &lt; TransientProviderError" in page
    assert admin_client.get(reverse("admin:deadletters_deadletter_delete", args=[row.pk])).status_code == 403

    response = admin_client.post(reverse("admin:deadletters_deadletter_replay", args=[row.pk]))
    assert response.status_code == 302 and response["Location"] == change_page(row)
    row.refresh_from_db()
    assert row.state == DeadLetter.State.REPLAYED and len(sent) == 1
    page = admin_client.get(change_page(row)).content.decode()
    assert 'value="Replay"' not in page and "replayed (running)" in page
    assert "admin:admin" in page  # the history inline names who


def test_the_detail_actions_refuse_without_permission_and_a_get(client, db, sent) -> None:
    row = make_dead_letter()
    user = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(user)
    page = client.get(change_page(row)).content.decode()
    assert 'value="Replay"' not in page and "may not replay or discard" in page
    client.post(reverse("admin:deadletters_deadletter_replay", args=[row.pk]))
    client.post(reverse("admin:deadletters_deadletter_discard", args=[row.pk]))
    assert client.get(reverse("admin:deadletters_deadletter_replay", args=[row.pk])).status_code == 405
    row.refresh_from_db()
    assert row.state == DeadLetter.State.OPEN and sent == []


def test_the_list_filters_by_provider_and_exception_with_subclasses(admin_client, db) -> None:
    chain = capture(chain_failure(), task_id="chain")
    capture(PermanentProviderError("no", provider="coingecko"), task_id="permanent")
    listing = admin_client.get(reverse("admin:deadletters_deadletter_changelist"))
    filters = listing.content.decode()
    assert "?provider=alphavantage" in filters and "?exception=TransientProviderError" in filters
    by_provider = admin_client.get(reverse("admin:deadletters_deadletter_changelist"), {"provider": "alphavantage"})
    assert list(by_provider.context["cl"].queryset) == [chain]
    by_base = admin_client.get(
        reverse("admin:deadletters_deadletter_changelist"), {"exception": "TransientProviderError"}
    )
    assert list(by_base.context["cl"].queryset) == [chain]
    assert "delete_selected" not in filters


def test_the_list_and_metrics_count_parked_records(admin_client, db, client, settings) -> None:
    parking.park('{"torn": ', "unreadable: test")
    listing = admin_client.get(reverse("admin:deadletters_deadletter_changelist")).content.decode()
    assert "1 fallback records are parked" in listing
    metrics = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").content.decode()
    assert 'financehub_dead_letter_fallback_records{state="parked"} 1.0' in metrics


def test_cleanup_deletes_a_closed_dead_letter_with_its_history_and_counts_the_letter_once(db, sent) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from backend.tasks.maintenance import cleanup

    old = (timezone.now() - timedelta(days=400)).isoformat()
    row = make_dead_letter("old-closed", failed_at=old)
    deadletters.discard(row, actor="cli:ops")
    with pytest.raises(deadletters.ReplayRefused):
        deadletters.replay(row, actor="cli:late")  # refused: one more history row

    assert cleanup()["dead_letters"] == 1
    assert not DeadLetter.objects.filter(pk=row.pk).exists()
    assert not DeadLetterAction.objects.filter(dead_letter_id=row.pk).exists()


def test_only_characters_a_database_refuses_are_escaped() -> None:
    clean, changed = rows.storable(make_record("ok", args=["stock", ("AAPL",)], kwargs={"note": "tab\\there"}))
    assert not changed and clean.kwargs == {"note": "tab\\there"}
    dirty, changed = rows.storable(make_record("bad", kwargs={"sym\x00": "lone \ud800 surrogate"}))
    assert changed and dirty.kwargs == {"sym\\x00": "lone \\ud800 surrogate"}


def test_the_command_shows_control_characters_escaped(db) -> None:
    row = make_dead_letter("ctl", exception_message="bad\r\nFORGED LINE \x1b[31m")
    out = run("show", str(row.pk))
    assert "exception_message: bad\\r\\nFORGED LINE \\x1b[31m" in out
    assert "\x1b" not in out and "\r" not in out
