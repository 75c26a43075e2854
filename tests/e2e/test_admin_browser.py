"""Django admin driven in a real headless Chromium: login, asset validation, dead letters, dispatch runs.

The browser is Debian's ``chromium`` (``tests/e2e/chromium.py``; fixtures in this folder's conftest).
A missing Chromium is a failure, not a skip. The site runs in pytest-django's ``live_server`` thread against the test
database (``transactional_db``, so the browser sees committed rows); it serves the admin's static
files too.

On a failing test, a screenshot of the page is saved under ``$FINANCEHUB_VAR_DIR/screenshots/`` and
its path is printed in the failure report.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from playwright.sync_api import Page, expect

from backend.deadletters.models import DeadLetter
from backend.market.models import Asset, AssetType
from backend.tasks.models import DispatchRun
from tests.e2e.chromium import PASSWORD, log_in

pytestmark = pytest.mark.e2e


def action_values(page: Page) -> list[str]:
    return page.locator("select[name=action] option").evaluate_all("options => options.map(o => o.value)")


def test_login_with_right_password_lands_on_index_with_app_sections_and_styles(
    page: Page, site: str, superuser: User
) -> None:
    log_in(page, site, "admin")

    expect(page).to_have_url(site + reverse("admin:index"))
    expect(page.locator("#content h1")).to_have_text("Site administration")
    expect(page.locator("div.app-market caption")).to_contain_text("Market data")
    expect(page.locator("div.app-tasks caption")).to_contain_text("Task platform")
    # The admin stylesheet arrived and was parsed (static files are served by the live server).
    loaded = page.evaluate(
        "() => [...document.styleSheets].some(s => (s.href || '').endsWith('/admin/css/base.css')"
        " && s.cssRules.length > 0)"
    )
    assert loaded, "admin/css/base.css did not load"


def test_login_with_wrong_password_shows_error_and_stays_on_login_page(page: Page, site: str, superuser: User) -> None:
    log_in(page, site, "admin", password="wrong password")

    expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")
    expect(page).to_have_url(re.compile(re.escape(site + reverse("admin:login"))))
    expect(page.locator("#id_password")).to_be_visible()


@pytest.mark.parametrize("symbol", ["AAPL/../x", "BRK B"])
def test_adding_asset_with_bad_symbol_shows_validation_message_and_saves_nothing(
    page: Page, site: str, superuser: User, symbol: str
) -> None:
    stock = AssetType.objects.create(code="stock", name="Stock")
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:market_asset_add"))
    page.fill("#id_symbol", symbol)
    page.select_option("#id_asset_type", str(stock.pk))
    page.click("input[name=_save]")

    expect(page.locator(".field-symbol .errorlist")).to_contain_text("upper-case letters or digits")
    expect(page).to_have_url(re.compile(re.escape(reverse("admin:market_asset_add")) + "$"))
    assert not Asset.objects.exists()


def test_adding_asset_with_dotted_symbol_succeeds_and_creates_the_row(page: Page, site: str, superuser: User) -> None:
    stock = AssetType.objects.create(code="stock", name="Stock")
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:market_asset_add"))
    page.fill("#id_symbol", "BRK.B")
    page.fill("#id_name", "Berkshire Hathaway B")
    page.select_option("#id_asset_type", str(stock.pk))
    page.click("input[name=_save]")

    expect(page).to_have_url(site + reverse("admin:market_asset_changelist"))
    expect(page.locator("ul.messagelist .success")).to_contain_text("BRK.B")
    assert Asset.objects.filter(symbol="BRK.B", asset_type=stock).exists()


def make_dead_letter(**fields: object) -> DeadLetter:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = {
        "task_name": "backend.tasks.fetch_quotes_batch",
        "task_id": "e2e-dead-letter-1",
        "exception_class": "backend.providers.errors.ProviderUnavailable",
        "exception_message": "upstream said 503",
        "symbols": ",AAPL,MSFT,",
        "providers": ",yahoo,",
        "first_failure_at": now,
        "last_failure_at": now,
    } | fields
    return DeadLetter.objects.create(**values)


def test_dead_letter_changelist_lists_row_with_filters_and_superuser_sees_replay(
    page: Page, site: str, superuser: User
) -> None:
    letter = make_dead_letter()
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:deadletters_deadletter_changelist"))

    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-task_text")).to_have_text(letter.task_name)
    expect(row.locator("td.field-exception_short")).to_have_text("ProviderUnavailable")
    expect(row.locator("td.field-symbol_text")).to_have_text("AAPL, MSFT")
    sidebar = page.locator("#changelist-filter")
    expect(sidebar).to_be_visible()
    for title in ("By state", "By task name", "By asset"):
        expect(sidebar).to_contain_text(title)
    expect(sidebar.get_by_role("link", name="AAPL", exact=True)).to_be_visible()
    assert {"replay_selected", "discard_selected"} <= set(action_values(page))


def test_staff_without_replay_permission_does_not_see_replay_action(page: Page, site: str) -> None:
    make_dead_letter()
    staff = User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="deadletters", codename__in=["view_deadletter", "discard_deadletter"]
        )
    )
    log_in(page, site, "operator")
    page.goto(site + reverse("admin:deadletters_deadletter_changelist"))

    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    actions = action_values(page)
    assert "discard_selected" in actions
    assert "replay_selected" not in actions


def test_dispatch_run_changelist_shows_completeness(page: Page, site: str, superuser: User) -> None:
    DispatchRun.objects.create(
        schedule="quotes-stock",
        slot=datetime(2025, 1, 2, 3, 0, tzinfo=UTC),
        status=DispatchRun.Status.DONE,
        planned=8,
        done=6,
        failed=2,
        batches=2,
    )
    log_in(page, site, "admin")
    page.goto(site + reverse("admin:tasks_dispatchrun_changelist"))

    expect(page.locator("#result_list thead")).to_contain_text("Complete %")
    expect(page.locator("#result_list tbody td.field-completeness_pct")).to_have_text("75.0")
