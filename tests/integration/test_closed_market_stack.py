"""A fresh stack first started on a closed day: every stock's last close within one fan-out, then quiet.

What done means for issue 21 item 1, with the clock frozen on a Saturday and on Thanksgiving: the demo
universe is loaded, beat's ticks are run here (the dispatcher and its fetches in this process, so they
share the frozen clock with the fake provider server, which runs in a thread of this process), and the
real provider clients fetch over HTTP. One stock fan-out stores every stock's last close; the ticks of
the rest of the closed stretch send no stock request; freshness says fresh on the dashboard,
/health/data, /metrics and the alerts alike. Both the fake server (Yahoo stamps the close) and the
offline simulated provider (it quotes a closed stock at its last close, stamped at the close, as Yahoo
does) are run; on a Sunday a second refresh stores the very same quote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from backend.common.exchange_sessions import latest_close
from backend.fake_provider import FakeProviderServer
from backend.market.demo import load_assets
from backend.market.models import Asset, Quote
from backend.monitoring.alerts.conditions import stale_assets
from backend.monitoring.dashboard.panels import freshness as dashboard_freshness
from backend.tasks import tasks
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.maintenance import heartbeat
from backend.tasks.models import DispatchRun
from backend.tasks.sources import reset_sources
from tests.fixtures.ticks import run_dispatch, tick_headers

pytestmark = [pytest.mark.integration, pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

NY = ZoneInfo("America/New_York")
# (the stack's first start, when extended trading resumes), New York time
CLOSED_DAYS = {
    "saturday": ("2026-11-28 11:00", "2026-11-30 04:00"),  # after Friday's 13:00 early close
    "thanksgiving": ("2026-11-26 11:00", "2026-11-27 04:00"),
}
STOCK_PROVIDERS = ("yahoo", "alphavantage")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviderServer]:
    # Its clock is this process's: time-machine freezes it for the server's thread as well.
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(params=["fake", "simulated"])
def mode(request, settings, server: FakeProviderServer) -> Iterator[str]:
    """The provider mode, with limiter and breaker state of this test's own."""
    settings.MARKET_DATA_MODE = request.param
    settings.FAKE_PROVIDER_URL = server.url
    settings.PROVIDER_STATE_PREFIX = f"test-closed-{uuid.uuid4().hex[:8]}"
    settings.PROVIDER_RATE_LIMITS = {}
    settings.BATCH_TASK_RESULTS = False
    server.clear_faults()
    server.clear_requests()
    reset_sources()
    yield request.param
    reset_sources()


@pytest.fixture
def fetched(monkeypatch) -> list[tuple[str, list[str], str]]:
    """Runs every quotes.fetch the dispatcher sends here, eagerly, under the frozen clock; records
    (asset class, symbols, queue/priority)."""
    sent: list[tuple[str, list[str], str]] = []

    def run_here(args, kwargs, **options):
        sent.append((args[0], list(args[1]), f"{options['queue']}/{options['priority']}"))
        return tasks.fetch_quotes.apply(args=args, kwargs=kwargs)

    monkeypatch.setattr(tasks.fetch_quotes, "apply_async", run_here)
    return sent


def beat_tick(asset_class: str, at: datetime) -> DispatchRun:
    headers = tick_headers(f"quotes: {asset_class}", at)
    result = run_dispatch(asset_class, f"tick-{asset_class}-{at.timestamp()}", headers, at)
    return DispatchRun.objects.get(pk=result["run"])


def stock_requests(server: FakeProviderServer) -> list[str]:
    """Paths of every request to a stock provider (cookie and crumb included)."""
    return [r["path"] for r in server.requests() if r["provider"] in STOCK_PROVIDERS]


@pytest.mark.parametrize("day", list(CLOSED_DAYS))
def test_a_stack_started_on_a_closed_day_holds_every_stocks_last_close_and_then_stays_quiet(
    mode: str, day: str, server: FakeProviderServer, fetched, asset_types
) -> None:
    first, resumes = (datetime.fromisoformat(t).replace(tzinfo=NY).astimezone(UTC) for t in CLOSED_DAYS[day])
    call_command("sync_schedules", verbosity=0)
    assert not load_assets(settings.DEMO_ASSETS_FILE).errors
    stocks = set(Asset.objects.refreshable().of_class("stock").values_list("symbol", flat=True))
    assert len(stocks) == 24
    last_close = latest_close("XNYS", first)

    # The first minute: beat's first tick of each quote schedule.
    stock_run = beat_tick("stock", first)
    beat_tick("crypto", first + timedelta(seconds=5))

    assert [(c, sorted(symbols), route) for c, symbols, route in fetched if c == "stock"] == [
        ("stock", sorted(stocks), "medium/4")
    ]
    stock_run.refresh_from_db()
    assert (stock_run.status, stock_run.planned, stock_run.done, stock_run.failed) == ("done", 24, 24, 0)
    assert "24 no quote yet -> medium/4" in stock_run.note
    quotes = Quote.objects.filter(asset__asset_type__code="stock")
    assert set(quotes.values_list("asset__symbol", flat=True)) == stocks
    # Yahoo stamps the last trade of the session, the close; the simulated provider does the same.
    assert set(quotes.values_list("as_of", flat=True)) == {last_close}
    if mode == "fake":
        assert [p for p in stock_requests(server) if "/finance/quote" in p] == ["/yahoo/v7/finance/quote"]

    with time_machine.travel(first + timedelta(minutes=1), tick=False):
        now = datetime.now(UTC)
        report = current_freshness(now)
        assert report.stale == 0, report.as_dict()["stalest"]
        assert [row.summary.stale for row in dashboard_freshness(now)] == [0, 0]
        assert stale_assets(report) == []
        assert heartbeat(now=now)["freshness"]["stale"] == 0
        data = Client().get("/health/data")
        assert data.status_code == 200, data.json()
        scrape = Client().get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
        assert 'financehub_stale_assets{asset_class="stock"} 0.0' in scrape.text

    # The rest of the closed stretch, and the night before extended trading resumes: no stock request.
    stock_requests_before = len(stock_requests(server))
    tick = first + timedelta(minutes=5)
    while tick < resumes:
        run = beat_tick("stock", tick)
        assert run.planned == 0, (tick, run.note)
        tick += timedelta(minutes=20)
    assert [c for c in fetched if c[0] == "stock"] == [("stock", sorted(stocks), "medium/4")]
    assert len(stock_requests(server)) == stock_requests_before
    with time_machine.travel(resumes - timedelta(minutes=1), tick=False):
        assert current_freshness(datetime.now(UTC)).by_class()["stock"].stale == 0
        assert Client().get("/health/data").json()["classes"]["stock"]["fresh"] is True


def stored_stock_quotes() -> dict[str, tuple[object, ...]]:
    """What the dashboard shows of each stock's quote: price, 24 h change, volume, as-of time, source."""
    rows = Quote.objects.filter(asset__asset_type__code="stock").values_list(
        "asset__symbol", "price", "change_24h_pct", "volume_24h", "as_of", "source"
    )
    return {symbol: tuple(rest) for symbol, *rest in rows}


def test_on_a_sunday_a_second_refresh_stores_the_same_last_close(
    mode: str, server: FakeProviderServer, fetched, asset_types
) -> None:
    # Sunday 29 November 2026, New York: the stack's first start, then an operator's run-now hours later.
    first, again = (datetime.fromisoformat(t).replace(tzinfo=NY) for t in ("2026-11-29 09:00", "2026-11-29 16:30"))
    call_command("sync_schedules", verbosity=0)
    assert not load_assets(settings.DEMO_ASSETS_FILE).errors
    last_close = latest_close("XNYS", first)

    beat_tick("stock", first)
    stored = stored_stock_quotes()
    fetched_at = set(Quote.objects.filter(asset__asset_type__code="stock").values_list("fetched_at", flat=True))
    run_now = run_dispatch(
        "stock", f"run-now-{uuid.uuid4().hex[:8]}", tick_headers("quotes: stock", from_beat=False), again
    )

    stock_fetches = [route for c, _, route in fetched if c == "stock"]
    assert stock_fetches == ["medium/4", "low/8"], run_now  # the closed day's first quote, then the run-now
    refreshed = Quote.objects.filter(asset__asset_type__code="stock")
    assert set(refreshed.values_list("fetched_at", flat=True)).isdisjoint(fetched_at)  # really stored again
    assert len(stored) == 24 and stored_stock_quotes() == stored
    assert {row[3] for row in stored.values()} == {last_close}
