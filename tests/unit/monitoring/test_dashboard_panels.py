"""The dashboard's state panels read the shared state every worker writes: breaker, pauses, beat."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.market.models import Quote
from backend.monitoring.alerts.conditions import stale_assets
from backend.monitoring.dashboard import panels
from backend.monitoring.health import Check
from backend.providers.errors import TransientProviderError
from backend.tasks import rehearsal
from backend.tasks.freshness_targets import current_freshness
from backend.tasks.models import DispatchRun, Heartbeat
from backend.tasks.sources import circuit_breaker, reset_sources

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_provider_state(settings) -> Iterator[None]:
    """Real providers' breaker and pauses in Redis, under a prefix of their own."""
    settings.MARKET_DATA_MODE = "fake"
    settings.PROVIDER_STATE_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.BREAKER_RESET_SECONDS = 300
    reset_sources()
    yield
    reset_sources()


@pytest.fixture
def staff_client(client: Client, monkeypatch) -> Client:
    monkeypatch.setattr(
        panels, "check_workers", lambda: Check("workers", True, {"workers": 1, "queues_without_worker": []})
    )
    operator = User.objects.create_user("ops", password="pw-for-tests-1", is_staff=True)
    # Every panel: each one whose rows have an admin page needs that page's view permission.
    views = ("view_asset", "view_taskresult", "view_deadletter", "view_dispatchrun")
    operator.user_permissions.add(*Permission.objects.filter(codename__in=views))
    client.force_login(operator)
    return client


def fail(provider: str) -> None:
    def timeout() -> None:
        raise TransientProviderError(f"{provider}: timeout", provider=provider)

    with pytest.raises(TransientProviderError):
        circuit_breaker().call(provider, timeout)


def provider_row(page: str, provider: str) -> str:
    return page[page.index(f'data-provider="{provider}"') :].split("</tr>")[0]


@pytest.mark.redis
def test_an_open_circuit_and_a_pause_show_with_their_provider(staff_client: Client, fresh_provider_state) -> None:
    fail("binance")
    fail("binance")  # the threshold: the circuit opens for 300 s
    fail("yahoo")  # one failure: still closed, counted
    circuit_breaker().pauses.pause("coingecko", 600, reason="429 Retry-After")

    rows = {row.provider: row for row in panels.providers()[0]}
    assert rows["binance"].circuit == "open" and rows["binance"].failures == 2
    assert 290 < rows["binance"].circuit_seconds_left <= 300
    assert (rows["yahoo"].circuit, rows["yahoo"].failures) == ("closed", 1)
    assert rows["coingecko"].paused_until is not None and not rows["coingecko"].healthy
    assert rows["newsapi"].healthy

    page = staff_client.get("/").content.decode()
    assert '<td class="bad">open (4m' in provider_row(page, "binance")
    assert 'class="warn"' in provider_row(page, "coingecko") and "UTC" in provider_row(page, "coingecko")
    assert '<td class="ok">closed</td>' in provider_row(page, "alphavantage")


def test_in_simulated_mode_no_breaker_is_shown_and_the_panel_says_why(staff_client: Client, settings) -> None:
    settings.MARKET_DATA_MODE = "simulated"
    rows, note = panels.providers()
    assert rows == [] and not note.problem
    page = staff_client.get("/").content.decode()
    assert 'class="provider"' not in page
    assert "Not used in simulated mode" in page.partition('id="provider-note"')[2]


def test_a_fault_rehearsal_shows_on_the_providers_panel(staff_client: Client, settings, empty_cache) -> None:
    settings.MARKET_DATA_MODE = "simulated"
    rehearsal.start(0.5, 10)
    rows, note = panels.providers()
    assert note.problem and "Fault rehearsal on: the simulated provider fails 50% of calls until" in str(note)
    assert '<p class="bad" id="provider-note">' in staff_client.get("/").content.decode()


def test_an_unreadable_rehearsal_state_is_said_not_raised(settings, monkeypatch) -> None:
    settings.MARKET_DATA_MODE = "simulated"

    def down(**kwargs):
        raise RedisConnectionError("redis is down")

    monkeypatch.setattr(rehearsal, "current", down)
    rows, note = panels.providers()
    assert rows == [] and note.problem and str(note) == "fault rehearsal state unreadable (ConnectionError)"


def test_without_redis_the_web_process_shows_no_breaker_of_its_own(staff_client: Client, settings) -> None:
    settings.MARKET_DATA_MODE = "fake"
    settings.PROVIDER_STATE_REDIS_URL = ""
    reset_sources()
    try:
        rows, note = panels.providers()
    finally:
        reset_sources()
    assert rows == [] and "every worker process keeps its own circuit breakers" in str(note)


def test_beat_shows_alive_or_silent_by_its_heartbeat(staff_client: Client) -> None:
    assert "no heartbeat recorded yet" in staff_client.get("/").content.decode()
    Heartbeat.objects.create(component="beat", last_seen=timezone.now() - timedelta(minutes=10))
    page = staff_client.get("/").content.decode()
    assert '<span class="bad">silent</span>' in page and "heartbeat 10m00s ago" in page
    Heartbeat.objects.filter(component="beat").update(last_seen=timezone.now())
    assert '<span class="ok">alive</span>' in staff_client.get("/").content.decode()


def test_recent_runs_leave_skipped_ticks_out_and_show_completeness(staff_client: Client) -> None:
    now = timezone.now()
    DispatchRun.objects.create(schedule="quotes: crypto", slot=now, status="done", planned=4, done=3, failed=1)
    DispatchRun.objects.create(schedule="quotes: crypto", slot=now, status="skipped", note="doubled tick")
    runs = panels.recent_runs()
    assert [r.status for r in runs] == ["done"]
    page = staff_client.get("/").content.decode()
    assert "75.0%" in page and "doubled tick" not in page


def test_durations_read_short() -> None:
    assert [panels.duration_text(s) for s in (None, 5, 310, 3 * 3600 + 125, 2 * 86400 + 7200)] == [
        "-", "5s", "5m10s", "3h02m", "2d02h",
    ]  # fmt: skip


def test_on_a_saturday_a_stock_without_its_last_close_is_named_and_one_holding_it_is_fresh(
    staff_client: Client, make_asset
) -> None:
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    friday_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 New York, an early close
    before_close = friday_close - timedelta(minutes=4)
    aapl = make_asset("AAPL", exchange="XNYS")
    Quote.objects.create(asset=aapl, price=1, as_of=before_close, source="t", fetched_at=before_close)

    with time_machine.travel(saturday, tick=False):
        page = staff_client.get("/").content.decode()
        alerts = stale_assets(current_freshness(saturday))
    row = page[page.index('data-class="stock"') :].split("</tr>")[0]
    assert "AAPL 23h04m, last close not stored / 1d00h" in row and 'title="XNYS t: last close not stored yet"' in row
    assert [a.summary for a in alerts] == ["1 assets are stale (stock 1/1); stalest: AAPL (last close not stored yet)"]

    Quote.objects.filter(asset=aapl).update(as_of=friday_close, fetched_at=saturday - timedelta(hours=20))
    with time_machine.travel(saturday, tick=False):
        row = staff_client.get("/").content.decode().split('data-class="stock"')[1].split("</tr>")[0]
    assert '<span class="ok">none</span>' in row
