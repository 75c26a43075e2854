"""The operator dashboard on a Sunday, in headless Chromium: stocks show their last close, not "no quote".

The clock of this process is frozen on a Sunday afternoon in New York. The live server runs in a thread
of this process, so the page is served on that Sunday too; beat's first ticks are run here (the
dispatcher and its fetches, offline simulated provider), as a stack first started that Sunday would
run them. The browser (its own process) only renders what the server sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect

from backend.market.models import Asset
from backend.tasks import tasks
from backend.tasks.sources import reset_sources
from tests.e2e.chromium import PASSWORD, SCREENSHOT_DIR
from tests.fixtures.ticks import run_dispatch, tick_headers

pytestmark = [pytest.mark.e2e]

NY = ZoneInfo("America/New_York")
STOCKS = (("AAPL", "XNYS"), ("MSFT", "XNAS"), ("JPM", "XNYS"))


def last_sunday_afternoon() -> datetime:
    """15:00 New York on the latest Sunday before now.

    Not a fixed date: the browser keeps the session cookie by the real clock, and a cookie that
    expired (two weeks after a fixed Sunday) would log the test out some day.
    """
    now = datetime.now(NY)
    sunday = now.date() - timedelta(days=(now.weekday() + 1) % 7)
    moment = datetime.combine(sunday, time(15), NY)
    return moment if moment <= now else moment - timedelta(days=7)


@pytest.fixture
def sunday(settings) -> Iterator[datetime]:
    """The frozen Sunday (ticking from 15:00), with the offline provider and no page reload."""
    settings.MARKET_DATA_MODE = "simulated"
    settings.DASHBOARD_REFRESH_SECONDS = 0
    reset_sources()
    moment = last_sunday_afternoon()
    with time_machine.travel(moment, tick=True):
        yield moment
    reset_sources()


@pytest.fixture
def fetch_here(monkeypatch) -> list[str]:
    """quotes.fetch run in this process (on the frozen clock) instead of on a worker; the routes it took."""
    routes: list[str] = []

    def run_here(args, kwargs, **options):
        routes.append(f"{args[0]} {options['queue']}/{options['priority']}")
        return tasks.fetch_quotes.apply(args=args, kwargs=kwargs)

    monkeypatch.setattr(tasks.fetch_quotes, "apply_async", run_here)
    return routes


def test_on_a_sunday_the_dashboard_shows_every_stocks_last_close(
    page: Page, site: str, superuser: User, asset_types, sunday: datetime, fetch_here
) -> None:
    # Created without signals: no backfill is queued for a worker this test does not run.
    Asset.objects.bulk_create(
        [Asset(symbol=s, name=s, asset_type=asset_types["stock"], exchange=e) for s, e in STOCKS]
        + [Asset(symbol="BTC", name="BTC", asset_type=asset_types["crypto"], binance_symbol="BTCUSDT")]
    )
    call_command("sync_schedules", verbosity=0)
    for asset_class in ("stock", "crypto"):  # beat's first tick of each quote schedule
        run_dispatch(asset_class, f"first-{asset_class}", tick_headers(f"quotes: {asset_class}", sunday), sunday)
    assert sorted(fetch_here) == ["crypto high/0", "stock medium/4"]

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(site + "/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    stocks = page.locator("tr.freshness-row[data-class=stock]")
    expect(stocks.locator("td").nth(1)).to_have_text("3")  # assets
    expect(stocks.locator("td").nth(2)).to_have_text("0")  # stale
    expect(stocks.locator("td").nth(3)).to_have_text("0")  # without a quote
    expect(stocks.locator("td").nth(4)).to_have_text("100.0%")
    expect(stocks.locator(".stalest")).to_have_count(0)
    expect(stocks).not_to_contain_text("no quote")
    expect(stocks.locator("td").last).to_have_text("none")
    expect(page.locator("tr.freshness-row[data-class=crypto] td").nth(2)).to_have_text("0")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "dashboard-sunday.png"), full_page=True)
