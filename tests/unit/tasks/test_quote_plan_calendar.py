"""Quote plans under frozen time on real calendar days: what stocks and crypto get, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from backend.market.models import Quote
from backend.tasks.quote_plan import plan_quote_routes
from backend.tasks.routing import Route

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")

# New York wall-clock moment -> (the stock decision's route, words its reason must hold)
DAYS = {
    "2026-11-24 10:00": (Route("high", 3), "stock open, 2 volatility unknown"),  # a regular Tuesday
    "2026-11-24 23:00": (None, "stock overnight, 2 not due"),
    "2026-11-28 12:00": (None, "stock closed day (weekend), 2 closed day"),
    "2026-11-26 12:00": (None, "stock closed day (holiday: Thanksgiving), 2 closed day"),
    "2026-11-27 12:00": (Route("high", 3), "stock open (early close 13:00), 2 volatility unknown"),
    # Five minutes after the early close, last fetched at 12:55: the closing price is due.
    "2026-11-27 13:05": (Route("medium", 4), "stock post-market (early close 13:00), 2 closing snapshot"),
    "2026-12-25 12:00": (None, "stock closed day (holiday: Christmas), 2 closed day"),
    "2026-03-08 12:00": (None, "stock closed day (weekend), 2 closed day"),  # DST starts
    "2026-11-01 12:00": (None, "stock closed day (weekend), 2 closed day"),  # DST ends
}


@pytest.fixture
def tracked(make_asset):
    """Two stocks and a crypto (no bars yet: volatility unknown)."""
    return [make_asset("AAPL", exchange="XNYS"), make_asset("MSFT", exchange="XNAS"), make_asset("BTC", "crypto")]


def quote_all(assets, fetched_at: datetime) -> None:
    for asset in assets:
        Quote.objects.update_or_create(
            asset=asset,
            defaults={
                "price": Decimal(100),
                "change_24h_pct": Decimal("0.5"),
                "as_of": fetched_at,
                "source": "t",
                "fetched_at": fetched_at,
            },
        )


@pytest.mark.parametrize(("moment", "expected"), list(DAYS.items()))
def test_stocks_follow_the_calendar_and_crypto_always_trades(tracked, moment: str, expected) -> None:
    route, reason = expected
    at = datetime.fromisoformat(moment).replace(tzinfo=NY)
    quote_all(tracked, at - timedelta(minutes=10))
    with time_machine.travel(at, tick=False):
        assert timezone.now() == at.astimezone(UTC)
        (stocks,) = plan_quote_routes("stock", 500)
        (crypto,) = plan_quote_routes("crypto", 500)

    assert stocks.decision.route == route
    assert stocks.decision.reason.startswith(reason)
    assert stocks.symbols == ("AAPL", "MSFT")
    assert crypto.decision.route == Route("high", 2)
    assert crypto.decision.reason == "crypto always open, 1 volatility unknown -> high/2"


def test_a_stale_crypto_quote_is_urgent_on_a_stock_holiday(tracked) -> None:
    at = datetime(2026, 12, 25, 12, 0, tzinfo=NY)
    quote_all(tracked, at - timedelta(hours=3))
    with time_machine.travel(at, tick=False):
        (crypto,) = plan_quote_routes("crypto", 500)
        forced = plan_quote_routes("stock", 500, run_now=True)
    assert crypto.decision.route == Route("high", 0) and "1 stale" in crypto.decision.reason
    assert forced[0].decision.route == Route("low", 8) and "2 operator run-now" in forced[0].decision.reason
