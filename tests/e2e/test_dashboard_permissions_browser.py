"""The operator dashboard in headless Chromium for a staff member who may not view dead letters.

They get 403 on the dead-letter admin list; on ``/`` they must not find those rows either: no panel,
no task names, exception messages or symbols, no Replay or Discard button, no dead-letter chart.
The other panels they may view are there, and the page says what it leaves out and why.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from backend.deadletters.models import DeadLetter
from tests.e2e.chromium import PASSWORD, SCREENSHOT_DIR

pytestmark = pytest.mark.e2e


@pytest.fixture
def open_letter(transactional_db) -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        task_id=str(uuid.uuid4()), task_name="quotes.fetch", args=["crypto", ["HIDDENSYM"]], symbols="HIDDENSYM",
        exception_class="TransientProviderError", first_failure_at=now, last_failure_at=now,
        exception_message="HTTP 500 from https://pro-api.example.test/v1/quotes?symbol=HIDDENSYM",
    )  # fmt: skip


@pytest.fixture
def no_reload(settings) -> None:
    settings.DASHBOARD_REFRESH_SECONDS = 0


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def log_in_to_dashboard(page: Page, site: str, username: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(site + "/")
    page.fill("#id_username", username)  # sent to the admin login page first, then back to /
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("header h1")).to_have_text("FinanceHub operations")


def test_staff_without_dead_letter_permissions_see_no_dead_letters(
    page: Page, site: str, open_letter: DeadLetter, no_reload
) -> None:
    staff("runs-only", "view_dispatchrun", "view_asset", "view_taskresult")
    log_in_to_dashboard(page, site, "runs-only")

    expect(page.locator("#runs")).to_be_visible()  # what they may view is there
    expect(page.locator("#freshness")).to_be_visible()
    expect(page.locator("#dead-letters")).to_have_count(0)
    expect(page.locator("#chart-dead-letters")).to_have_count(0)
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    expect(page.get_by_role("button", name="Discard")).to_have_count(0)
    body = page.locator("body")
    for hidden in ("HIDDENSYM", "quotes.fetch", "pro-api.example.test", "dead letters open"):
        expect(body).not_to_contain_text(hidden)
    expect(page.locator("p.hidden-panels")).to_contain_text("dead letters (deadletters.view_deadletter)")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "dashboard-without-dead-letters.png"), full_page=True)

    # The admin list refuses them too: the dashboard shows no more than admin would.
    response = page.goto(site + "/admin/deadletters/deadletter/")
    assert response is not None and response.status == 403


def test_the_view_permission_shows_the_rows_and_the_buttons_follow_their_own(
    page: Page, site: str, open_letter: DeadLetter, no_reload
) -> None:
    staff("replayer", "view_deadletter", "replay_deadletter")
    log_in_to_dashboard(page, site, "replayer")

    row = page.locator(f"#dead-letters tr.letter[data-id='{open_letter.pk}']")
    expect(row).to_contain_text("HIDDENSYM")
    expect(row.get_by_role("button", name="Replay")).to_have_count(1)
    expect(row.get_by_role("button", name="Discard")).to_have_count(0)  # no discard permission
