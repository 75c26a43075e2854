"""Who may see the dashboard and press its buttons: staff only, the admin's permissions, CSRF, history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backend.core.celery import app
from backend.deadletters.models import DeadLetter, DeadLetterAction
from backend.market.models import Quote

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def letter(**fields) -> DeadLetter:
    now = timezone.now()
    defaults = {"task_name": "quotes.fetch", "args": ["crypto", ["BTC"]], "first_failure_at": now}
    return DeadLetter.objects.create(task_id=str(uuid.uuid4()), last_failure_at=now, **{**defaults, **fields})


def staff(*perms: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*(Permission.objects.get(codename=p) for p in perms))
    return user


@pytest.fixture
def sends(monkeypatch, transactional_db) -> list[dict]:
    # A replay sends once its transaction commits: the test runs on real transactions.
    calls: list[dict] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, kwargs=None, **o: calls.append({"name": name, **o}))
    return calls


@pytest.fixture(autouse=True)
def no_worker_broadcast(monkeypatch) -> None:
    # These tests are about access; liveness has its own tests and would wait for worker replies here.
    from backend.monitoring.dashboard import panels
    from backend.monitoring.health import Check

    monkeypatch.setattr(panels, "check_workers", lambda: Check("workers", False, "not asked"))


def test_anonymous_and_non_staff_users_get_the_admin_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/?next=/"
    User.objects.create_user("customer", password=PASSWORD)
    client.login(username="customer", password=PASSWORD)
    followed = client.get("/", follow=True)
    assert followed.redirect_chain[0][0] == "/admin/login/?next=/"
    assert b"not authorized to access this page" in followed.content


def test_staff_see_every_panel(client: Client) -> None:
    letter()
    client.force_login(staff("view_asset", "view_taskresult", "view_deadletter", "view_dispatchrun"))
    page = client.get("/").content.decode()
    for panel in ("liveness", "freshness", "chart-tasks", "chart-dead-letters", "chart-dispatch", "chart-tick-wait"):
        assert f'id="{panel}"' in page
    assert page.count("<svg") == 4 and "Open dead letters (1)" in page
    assert 'name="replay"' not in page and "you may not replay" in page  # staff without the permission


def test_one_stale_symbol_of_a_mostly_fresh_class_is_named(client: Client, make_asset) -> None:
    now = timezone.now()
    for symbol in ("BTC", "ETH"):
        Quote.objects.create(asset=make_asset(symbol, "crypto"), price=1, as_of=now, source="t", fetched_at=now)
    stuck = make_asset("ADA", "crypto")
    Quote.objects.create(asset=stuck, price=1, as_of=now - timedelta(days=2), source="t", fetched_at=now)
    client.force_login(staff("view_asset"))
    page = client.get("/").content.decode()
    row = page[page.index('data-class="crypto"') :].split("</tr>")[0]
    assert '<td class="num bad">1</td>' in row and "66.7%" in row
    assert '<span class="bad stalest"' in row and "ADA 2d00h / 1h00m" in row
    assert "BTC" not in row


def test_replay_needs_the_admin_permission_and_lands_in_the_history(client: Client, sends) -> None:
    row = letter()
    client.force_login(staff("view_deadletter"))
    client.post(reverse("dashboard-replay", args=[row.pk]))
    row.refresh_from_db()
    assert row.state == DeadLetter.State.OPEN and sends == []

    operator = staff("view_deadletter", "replay_deadletter")
    client.force_login(operator)
    response = client.post(reverse("dashboard-replay", args=[row.pk]), follow=True)

    assert "replayed as task" in response.content.decode()
    row.refresh_from_db()
    assert row.state == DeadLetter.State.REPLAYED and row.replayed_by == f"admin:{operator.username}"
    assert [s["name"] for s in sends] == ["quotes.fetch"] and sends[0]["task_id"] == row.replay_task_id
    refused, sent = DeadLetterAction.objects.filter(dead_letter=row).order_by("pk")
    assert (refused.kind, refused.result) == ("replay", "refused")  # the first click, without the permission
    assert (sent.kind, sent.result, sent.actor) == ("replay", "sent", f"admin:{operator.username}")


def test_discard_needs_its_permission_and_refuses_a_closed_letter(client: Client) -> None:
    row = letter()
    client.force_login(staff("replay_deadletter"))
    client.post(reverse("dashboard-discard", args=[row.pk]))
    assert DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.OPEN

    client.force_login(staff("discard_deadletter"))
    client.post(reverse("dashboard-discard", args=[row.pk]))
    again = client.post(reverse("dashboard-discard", args=[row.pk]), follow=True).content.decode()

    assert DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.DISCARDED
    assert "Not discarded" in again
    assert list(DeadLetterAction.objects.filter(dead_letter=row).values_list("result", flat=True)) == [
        "refused",  # the replay-only user's click
        "discarded",
        "refused",
    ]


def test_a_redacted_letter_offers_no_replay_and_says_why(client: Client) -> None:
    letter(kwargs={"api_key": "[redacted]"})
    client.force_login(User.objects.create_superuser("root", "r@example.com", PASSWORD))
    page = client.get("/").content.decode()
    assert 'name="replay"' not in page and 'name="discard"' in page and "redacted arguments" in page


def test_buttons_need_a_csrf_token_and_a_post(sends) -> None:
    row = letter()
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", "r@example.com", PASSWORD))
    assert client.post(reverse("dashboard-replay", args=[row.pk])).status_code == 403
    assert client.get(reverse("dashboard-replay", args=[row.pk])).status_code == 405
    assert DeadLetter.objects.get(pk=row.pk).state == DeadLetter.State.OPEN and sends == []


def test_buttons_pressed_without_permission_are_refused_in_the_history(client: Client, sends) -> None:
    row = letter()
    user = staff("view_deadletter")
    client.force_login(user)
    replayed = client.post(reverse("dashboard-replay", args=[row.pk]), follow=True).content.decode()
    client.post(reverse("dashboard-discard", args=[row.pk]))

    assert "may not replay dead letters" in replayed and sends == []
    history = list(DeadLetterAction.objects.filter(dead_letter=row).values_list("kind", "result", "actor", "detail"))
    actor = f"admin:{user.username}"
    assert history == [
        ("replay", "refused", actor, f"refused: {actor} lacks the permission deadletters.replay_deadletter"),
        ("discard", "refused", actor, f"refused: {actor} lacks the permission deadletters.discard_deadletter"),
    ]


def test_a_replay_on_a_permanent_error_says_it_will_fail_the_same_way(client: Client, sends) -> None:
    row = letter(
        exception_class="backend.providers.errors.UnknownSymbolError",
        exception_lineage=",backend.providers.errors.UnknownSymbolError,backend.providers.errors.PermanentProviderError,",
    )
    client.force_login(staff("view_deadletter", "replay_deadletter"))
    page = client.post(reverse("dashboard-replay", args=[row.pk]), follow=True).content.decode()
    assert "replayed as task" in page
    assert f"#{row.pk}: The recorded error is permanent (UnknownSymbolError" in page
    assert "will fail the same way unless its cause was fixed" in page


def test_a_row_with_cut_arguments_is_not_replayed_from_the_dashboard(client: Client, sends) -> None:
    row = letter(arguments_truncated=True, arguments_size=100_014)
    client.force_login(staff("view_deadletter", "replay_deadletter"))
    page = client.post(reverse("dashboard-replay", args=[row.pk]), follow=True).content.decode()
    assert "Not replayed" in page and "confirm" in page and sends == []
    assert DeadLetterAction.objects.get(dead_letter=row).result == "refused"
