"""Each dashboard panel whose rows have an admin page is shown only with that page's view permission.

A staff member without ``deadletters.view_deadletter`` gets 403 on the dead-letter admin list; the dashboard
must not show them those rows either (task names, exception messages with provider URLs, symbols).
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from backend.deadletters.models import DeadLetter
from backend.monitoring.dashboard import panels, series

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
# The page's sections by id, per panel.
SECTIONS = {
    "freshness": ["freshness"],
    "tasks": ["chart-tasks"],
    "dead_letters": ["dead-letters", "chart-dead-letters"],
    "runs": ["runs", "chart-dispatch", "chart-tick-wait"],
}
ALWAYS = ["liveness", "providers"]
MESSAGE = "HTTP 500 from https://pro-api.example.test/v1/quotes?symbol=SECRETSYM"


@pytest.fixture(autouse=True)
def no_worker_broadcast(monkeypatch) -> None:
    from backend.monitoring.health import Check

    monkeypatch.setattr(panels, "check_workers", lambda: Check("workers", False, "not asked"))


@pytest.fixture
def open_letter() -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        task_id=str(uuid.uuid4()), task_name="quotes.fetch", args=["crypto", ["SECRETSYM"]], symbols="SECRETSYM",
        exception_class="TransientProviderError", exception_message=MESSAGE, first_failure_at=now, last_failure_at=now,
    )  # fmt: skip


def page_for(client: Client, *codenames: str) -> str:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", password=PASSWORD, is_staff=True)
    user.user_permissions.add(*(Permission.objects.get(codename=c) for c in codenames))
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def shown(page: str) -> set[str]:
    ids = [section for sections in SECTIONS.values() for section in sections] + ALWAYS
    return {section for section in ids if f'id="{section}"' in page}


def test_staff_without_view_permissions_see_only_platform_state(client: Client, open_letter) -> None:
    page = page_for(client)
    assert shown(page) == set(ALWAYS)
    for secret in ("SECRETSYM", "quotes.fetch", "pro-api.example.test", "TransientProviderError", "dead letters open"):
        assert secret not in page
    assert 'name="replay"' not in page and 'name="discard"' not in page
    assert "Not shown (you may not view them in admin)" in page and "deadletters.view_deadletter" in page


@pytest.mark.parametrize(
    ("codename", "panel"),
    [
        ("view_asset", "freshness"),
        ("view_taskresult", "tasks"),
        ("view_deadletter", "dead_letters"),
        ("view_dispatchrun", "runs"),
    ],
)
def test_each_view_permission_shows_its_own_panels(client: Client, codename: str, panel: str) -> None:
    assert shown(page_for(client, codename)) == {*ALWAYS, *SECTIONS[panel]}


def test_dead_letter_buttons_need_their_own_permissions(client: Client, open_letter) -> None:
    viewer = page_for(client, "view_deadletter")
    assert "SECRETSYM" in viewer and "dead letters open" in viewer
    assert 'name="replay"' not in viewer and 'name="discard"' not in viewer
    replayer = page_for(client, "view_deadletter", "replay_deadletter")
    assert 'name="replay"' in replayer and 'name="discard"' not in replayer
    discarder = page_for(client, "view_deadletter", "discard_deadletter")
    assert 'name="discard"' in discarder and 'name="replay"' not in discarder
    # A button without the right to see the row is no button at all.
    assert "SECRETSYM" not in page_for(client, "replay_deadletter", "discard_deadletter")


def test_a_hidden_panel_is_not_even_read(client: Client, monkeypatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("read for a user who may not see it")

    for name in ("task_results", "dead_letters", "dispatch_outcomes", "tick_wait"):
        monkeypatch.setattr(series, name, forbidden)
    monkeypatch.setattr(panels, "open_letters", forbidden)
    monkeypatch.setattr(panels, "recent_runs", forbidden)
    monkeypatch.setattr(panels, "freshness", forbidden)
    assert shown(page_for(client)) == set(ALWAYS)
