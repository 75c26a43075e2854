"""What an operator sees and is asked before a replay: cut arguments confirmed first, permanent errors
said in admin and in the command, refusals kept in the history, discarded messages shown as they arrived."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from backend import deadletters
from backend.deadletters.models import DeadLetter, DeadLetterAction
from backend.providers.errors import UnknownSymbolError
from tests.fixtures.deadletters import make_dead_letter

pytestmark = pytest.mark.usefixtures("isolated_fallback")

UNKNOWN_SYMBOL = {
    "exception_class": "backend.providers.errors.UnknownSymbolError",
    "exception_lineage": deadletters.exception_lineage(UnknownSymbolError("unknown symbol NOPE")),
    "exception_message": "unknown symbol NOPE",
}


def cut_letter(task_id: str = "t-cut") -> DeadLetter:
    return make_dead_letter(task_id, arguments_truncated=True, arguments_size=100_014, args=["stock", ["A" * 50]])


def changelist() -> str:
    return reverse("admin:deadletters_deadletter_changelist")


def change_page(row: DeadLetter) -> str:
    return reverse("admin:deadletters_deadletter_change", args=[row.pk])


def run(*args: str) -> str:
    out = StringIO()
    call_command("deadletters", *args, stdout=out, stderr=out)
    return out.getvalue()


# --- Cut arguments: confirmed first -------------------------------------------------------------------
def test_the_detail_replay_of_cut_arguments_asks_first_and_replays_once_confirmed(admin_client, sent) -> None:
    row = cut_letter()
    page = admin_client.get(change_page(row)).content.decode()
    assert "kept " in page and "of 100,014 characters" in page and "asks for your confirmation" in page

    asked = admin_client.post(reverse("admin:deadletters_deadletter_replay", args=[row.pk]))
    assert asked.status_code == 200 and "Replay with cut arguments?" in asked.content.decode()
    assert sent == [] and not row.actions.exists()

    done = admin_client.post(
        reverse("admin:deadletters_deadletter_replay", args=[row.pk]), {"confirm_truncated": "yes"}
    )
    assert done.status_code == 302
    row.refresh_from_db()
    assert row.state == DeadLetter.State.REPLAYED and [c["task_id"] for c in sent] == [row.replay_task_id]
    assert row.actions.get().detail.endswith("truncated arguments, confirmed")


def test_the_bulk_action_with_a_cut_row_asks_first_then_replays_the_selection(admin_client, sent) -> None:
    plain, cut = make_dead_letter("b-plain"), cut_letter("b-cut")
    selection = {"action": "replay_selected", "_selected_action": [plain.pk, cut.pk], "index": "0"}
    asked = admin_client.post(changelist(), selection)
    page = asked.content.decode()
    assert asked.status_code == 200 and "Replay with cut arguments?" in page and f"#{cut.pk}" in page
    assert sent == []

    hidden = dict(re.findall(r'<input type="hidden" name="(action|confirm_truncated)" value="([^"]+)"', page))
    ids = re.findall(r'name="_selected_action" value="(\d+)"', page)
    assert hidden == {"action": "replay_selected", "confirm_truncated": "yes"} and ids == [str(plain.pk), str(cut.pk)]
    admin_client.post(changelist(), {**hidden, "_selected_action": ids})
    assert len(sent) == 2
    assert set(DeadLetter.objects.values_list("state", flat=True)) == {DeadLetter.State.REPLAYED}


def test_the_command_refuses_cut_arguments_unless_confirmed(sent) -> None:
    row = cut_letter()
    refused = run("replay", str(row.pk))
    assert re.search(r"^refused: truncated arguments, not confirmed +1 ", refused, re.M) and sent == []
    assert "--confirm-truncated" in refused
    assert "arguments cut: kept " in run("show", str(row.pk))
    assert re.search(r"^replayed +1 ", run("replay", str(row.pk), "--confirm-truncated"), re.M) and len(sent) == 1


# --- Permanent errors: said before and after a replay --------------------------------------------------
def test_admin_says_a_permanent_error_will_fail_again_in_the_list_the_detail_and_the_message(
    admin_client, sent
) -> None:
    row = make_dead_letter("t-perm", **UNKNOWN_SYMBOL)
    listing = admin_client.get(changelist()).content.decode()
    assert "(permanent)" in listing and "will fail the same way unless its cause was fixed" in listing
    detail = admin_client.get(change_page(row)).content.decode()
    assert 'class="deadletter-replay-warning"' in detail and "UnknownSymbolError" in detail

    replayed = admin_client.post(reverse("admin:deadletters_deadletter_replay", args=[row.pk]), follow=True)
    text = replayed.content.decode()
    assert "Replayed as task" in text and "will fail the same way unless its cause was fixed" in text

    other = make_dead_letter("t-perm-2", **UNKNOWN_SYMBOL)
    bulk = admin_client.post(
        changelist(), {"action": "replay_selected", "_selected_action": [other.pk], "index": "0"}, follow=True
    )
    assert "1 replayed dead letters recorded a permanent error" in bulk.content.decode()


def test_a_transient_error_carries_no_warning(admin_client, db) -> None:
    row = make_dead_letter("t-transient")
    assert "(permanent)" not in admin_client.get(changelist()).content.decode()
    assert "deadletter-replay-warning" not in admin_client.get(change_page(row)).content.decode()


def test_the_command_says_a_permanent_error_will_fail_again(sent) -> None:
    row = make_dead_letter("t-perm", **UNKNOWN_SYMBOL)
    assert "permanent" in run("list")
    assert "replay warning: The recorded error is permanent (UnknownSymbolError" in run("show", str(row.pk))
    for out in (run("replay", str(row.pk), "--dry-run"), run("replay", str(row.pk))):
        assert f"{row.pk}: warning: The recorded error is permanent" in out


# --- Refusals are history ------------------------------------------------------------------------------
def refusals(row: DeadLetter) -> list[tuple[str, str, str]]:
    return list(row.actions.filter(result=DeadLetterAction.Result.REFUSED).values_list("kind", "actor", "detail"))


def test_detail_buttons_pressed_without_permission_are_refused_in_the_history(client, viewer, sent) -> None:
    row = make_dead_letter()
    client.post(reverse("admin:deadletters_deadletter_replay", args=[row.pk]))
    client.post(reverse("admin:deadletters_deadletter_discard", args=[row.pk]))
    assert refusals(row) == [
        ("replay", "admin:viewer", "refused: admin:viewer lacks the permission deadletters.replay_deadletter"),
        ("discard", "admin:viewer", "refused: admin:viewer lacks the permission deadletters.discard_deadletter"),
    ]
    assert sent == [] and DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.OPEN


@pytest.mark.parametrize(("action", "kind"), [("replay_selected", "replay"), ("discard_selected", "discard")])
def test_a_bulk_action_posted_without_permission_is_refused_in_each_rows_history(client, viewer, sent, action, kind):
    rows = [make_dead_letter("p-1"), make_dead_letter("p-2")]
    response = client.post(changelist(), {"action": action, "_selected_action": [r.pk for r in rows], "index": "0"})
    assert response.status_code == 302
    for row in rows:
        assert [(k, a) for k, a, _ in refusals(row)] == [(kind, "admin:viewer")]
        assert DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.OPEN
    assert sent == []


def test_a_refused_replay_of_an_undecodable_message_is_history(db) -> None:
    row = make_dead_letter("t-undecodable", task_name="quotes.fetch", origin="undecodable", arguments_known=False)
    with pytest.raises(deadletters.ReplayRefused, match="could not be decoded"):
        deadletters.replay(row, actor="cli:ops")
    [(kind, actor, detail)] = refusals(row)
    assert (kind, actor) == ("replay", "cli:ops") and "inspect it, then discard it" in detail


# --- Discarded messages as they arrived ------------------------------------------------------------------
def test_a_discarded_message_is_shown_as_it_arrived(admin_client, db) -> None:
    message = {
        "content_type": "application/x-python-serialize",
        "content_encoding": "binary",
        "headers": {"task": "quotes.fetch", "id": "t-pickle"},
        "delivery_info": {"exchange": "high", "routing_key": "high"},
        "body": "\\x80\\x04\\x95",
        "body_format": "escaped bytes",
        "body_bytes": 3,
        "body_truncated": False,
    }
    row = make_dead_letter("t-pickle", origin="rejected", arguments_known=False, message=message, args=[])
    detail = admin_client.get(change_page(row)).content.decode()
    assert "Message as it arrived" in detail and "application/x-python-serialize" in detail
    assert "\\x80\\x04\\x95" in detail and "message rejected" in detail
    assert 'value="Replay"' not in detail and 'value="Discard"' in detail
    assert admin_client.get(changelist(), {"origin__exact": "rejected"}).context["cl"].result_count == 1
    shown = run("show", str(row.pk))
    assert "origin: rejected" in shown and "content_type: application/x-python-serialize" in shown
    assert "args: - (the message could not be decoded" in shown
    assert run("list", "--origin", "rejected").strip().endswith("1 dead letters")
