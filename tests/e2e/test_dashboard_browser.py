"""The operator dashboard in headless Chromium, on data a real worker made.

A real worker (quick retries) runs quote dispatches against the fake provider server while one
provider is down, so one batch ends in a dead letter. The staff user logs in, sees the four charts
drawn from those rows, the stale symbol named under freshness, the run with its failure, and
replays the dead letter by clicking; the worker runs the replay and the dead letter is resolved.
Screenshots of the page are kept under ``$FINANCEHUB_VAR_DIR/screenshots/`` as test artefacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django_celery_results.models import TaskResult
from playwright.sync_api import Page, expect

from backend.deadletters.models import DeadLetter, DeadLetterAction
from backend.tasks.models import DispatchRun
from backend.tasks.tasks import dispatch_quotes, heartbeat
from backend.tasks.ticks import BEAT_FLAG_HEADER, SCHEDULE_HEADER
from tests.e2e.chromium import PASSWORD, SCREENSHOT_DIR
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess, require_alive, swapped_worker

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# One retry, one second apart: a batch whose only provider is down is dead-lettered within seconds.
WORKER_ENV = {"TASK_MAX_RETRIES": "1", "TASK_RETRY_DELAY_FLOOR": "1", "TASK_RETRY_BACKOFF_MAX": "1"}


@pytest.fixture(scope="module")
def quick_worker(celery_worker_process: WorkerProcess, django_db_blocker) -> Iterator[WorkerProcess]:
    with swapped_worker(celery_worker_process, WORKER_ENV, django_db_blocker) as worker:
        yield worker


@pytest.fixture
def worker(quick_worker: WorkerProcess, transactional_db, providers) -> WorkerProcess:
    return require_alive(quick_worker)


@pytest.fixture
def no_reload(settings) -> None:
    # The page reloads itself every 30 s in production; a reload in the middle of a click would race.
    settings.DASHBOARD_REFRESH_SECONDS = 0


def beat_tick(asset_class: str, worker: WorkerProcess) -> DispatchRun:
    """Send a quote dispatch as beat sends it (its tick stamped on publish) and wait for the run to close."""
    headers = {BEAT_FLAG_HEADER: True, SCHEDULE_HEADER: f"quotes: {asset_class}"}
    run_id = dispatch_quotes.apply_async(args=(asset_class,), headers=headers).get(timeout=60)["run"]
    closed = wait_for(lambda: DispatchRun.objects.get(pk=run_id).status != DispatchRun.Status.RUNNING)
    assert closed, f"run {run_id} still open:\n{worker.log()[-4000:]}"
    return DispatchRun.objects.get(pk=run_id)


def log_in_to_dashboard(page: Page, site: str, username: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(site + "/")
    page.fill("#id_username", username)  # sent to the admin login page first
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def bars(page: Page, chart: str):
    return page.locator(f"#chart-{chart} svg rect.bar")


def test_charts_show_a_real_run_and_a_dead_letter_is_replayed_by_clicking(
    page: Page, site: str, superuser: User, worker, providers, make_asset, no_reload, settings
) -> None:
    settings.MARKET_DATA_MODE = "fake"  # as the worker: a stack's web and workers share one configuration
    for symbol in ("BTC", "ETH"):
        make_asset(symbol, "crypto")
    make_asset("ONLYCMC", "crypto", binance_symbol="", coingecko_id="")  # only CoinMarketCap serves it
    make_asset("AAPL")
    providers.set_fault("coinmarketcap", "status_500")
    crypto = beat_tick("crypto", worker)
    stock = beat_tick("stock", worker)
    heartbeat.delay().get(timeout=60)
    assert (crypto.done, crypto.failed, stock.done) == (2, 1, 1)
    letter = DeadLetter.objects.get(task_name="quotes.fetch")

    log_in_to_dashboard(page, site, "admin")

    expect(page.locator("header h1")).to_have_text("FinanceHub operations")
    expect(page.locator("#liveness")).to_contain_text("beat: alive")
    crypto_row = page.locator("tr.freshness-row[data-class=crypto]")
    expect(crypto_row.locator(".stalest.bad")).to_have_text(re.compile(r"^ONLYCMC no quote / "))
    # Every chart is drawn from the rows the worker wrote: task results, the dead letter, the runs, the ticks.
    expect(bars(page, "tasks").first).to_be_visible()
    expect(page.locator("#chart-tasks svg")).to_contain_text("succeeded")
    failures = TaskResult.objects.filter(status="FAILURE").count()
    assert failures >= 1  # the dead-lettered batch at least
    expect(page.locator("#chart-tasks svg")).to_contain_text(f"failed ({failures})")
    # The new asset's backfill fails too (no bars for it anywhere): each dead letter is stacked by task.
    expect(bars(page, "dead-letters")).to_have_count(DeadLetter.objects.count())
    expect(bars(page, "dead-letters").filter(has_text="quotes.fetch")).to_have_text(re.compile("quotes.fetch: 1 dead"))
    expect(page.locator("#chart-dispatch svg")).to_contain_text("done (3)")
    expect(page.locator("#chart-dispatch svg")).to_contain_text("failed (1)")
    expect(page.locator("#chart-tick-wait svg circle").first).to_be_visible()
    runs = page.locator("#runs tr.run")
    expect(runs.filter(has_text="quotes: crypto").locator("td").nth(5)).to_have_text("1")
    if settings.PROVIDER_STATE_REDIS_URL:
        expect(page.locator("#providers tr.provider[data-provider=coinmarketcap]")).to_contain_text("closed")
    else:  # make run without Redis: each worker process keeps its own breakers, so the page says it shows none
        expect(page.locator("#provider-note")).to_contain_text("Not shown: without Redis")
    row = page.locator(f"#dead-letters tr.letter[data-id='{letter.pk}']")
    expect(row).to_contain_text("ONLYCMC")
    expect(row).to_contain_text("coinmarketcap")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "dashboard.png"), full_page=True)

    providers.clear_faults()  # CoinMarketCap is back: the replay can succeed
    row.get_by_role("button", name="Replay").click()

    expect(page.locator("ul.messages li.success")).to_contain_text(f"Dead letter #{letter.pk} (quotes.fetch) replayed")
    expect(row).to_have_count(0)
    expect(page.locator("#dead-letters h2")).to_have_text(f"Open dead letters ({DeadLetter.objects.count() - 1})")
    page.screenshot(path=str(SCREENSHOT_DIR / "dashboard-after-replay.png"), full_page=True)
    resolved = wait_for(lambda: DeadLetter.objects.get(pk=letter.pk).state == DeadLetter.State.RESOLVED)
    assert resolved, f"the replay did not succeed:\n{worker.log()[-3000:]}"
    history = list(DeadLetterAction.objects.filter(dead_letter=letter).values_list("kind", "result", "actor"))
    assert history[0] == ("replay", "sent", "admin:admin") and history[1][:2] == ("outcome", "succeeded")


def test_a_user_who_is_not_staff_gets_the_login_page(page: Page, site: str, transactional_db) -> None:
    User.objects.create_user("customer", password=PASSWORD)
    log_in_to_dashboard(page, site, "customer")

    expect(page).to_have_url(f"{site}/admin/login/?next=/")
    expect(page.locator(".errornote")).to_contain_text("staff account")
    expect(page.locator("#liveness")).to_have_count(0)
