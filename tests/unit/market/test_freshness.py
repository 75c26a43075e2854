"""Per-asset freshness: one stale asset shows up however fresh its class is, by the provider's as-of time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.common.exchange_sessions import market_clock
from backend.market.conditions import measure_staleness
from backend.market.freshness import measure_freshness
from backend.market.models import Quote

pytestmark = pytest.mark.django_db

# A Tuesday, 10:00 in New York: the stock market is in session.
IN_SESSION = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TARGETS = {"crypto": 240.0, "stock": 600.0}


def quote(asset, *, age: float, now: datetime, fetched_age: float = 0.0) -> Quote:
    return Quote.objects.create(
        asset=asset,
        price=1,
        as_of=now - timedelta(seconds=age),
        source="binance",
        fetched_at=now - timedelta(seconds=fetched_age),
    )


def test_a_single_failing_symbol_is_named_although_its_class_has_fresh_quotes(make_asset) -> None:
    now = IN_SESSION
    for i in range(20):
        quote(make_asset(f"C{i}", "crypto"), age=30, now=now)
    quote(make_asset("DEAD", "crypto"), age=3600, now=now)

    report = measure_freshness(now, TARGETS, 3600)

    crypto = report.by_class()["crypto"]
    assert (crypto.assets, crypto.stale, crypto.fresh) == (21, 1, False)
    assert crypto.fresh_share == pytest.approx(20 / 21)
    assert [(s.symbol, s.age_seconds, s.target_seconds) for s in report.stalest] == [("DEAD", 3600.0, 240.0)]
    assert crypto.age_quantiles == {"0.5": 30.0, "0.9": 30.0, "0.99": 3600.0, "1": 3600.0}


def test_age_counts_from_the_providers_as_of_time_not_our_fetch(make_asset) -> None:
    now = IN_SESSION
    quote(make_asset("AAPL"), age=2 * 3600, fetched_age=0, now=now)  # fetched now, priced two hours ago
    report = measure_freshness(now, TARGETS, 3600)
    assert report.by_class()["stock"].stale == 1
    assert report.stalest[0].fetched_at == now


def test_an_asset_without_any_quote_is_stale_and_listed_first(make_asset) -> None:
    now = IN_SESSION
    quote(make_asset("OLD", "crypto"), age=999, now=now)
    make_asset("NEW", "crypto")
    report = measure_freshness(now, TARGETS, 3600)
    crypto = report.by_class()["crypto"]
    assert (crypto.stale, crypto.without_quote) == (2, 1)
    assert [s.symbol for s in report.stalest] == ["NEW", "OLD"]
    assert report.stalest[0].age_seconds is None


def test_the_last_close_is_fresh_on_a_weekend_but_an_older_price_is_not(make_asset) -> None:
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    friday_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # early close 13:00 New York
    aapl, msft = make_asset("AAPL", exchange="XNYS"), make_asset("MSFT", exchange="XNAS")
    Quote.objects.create(asset=aapl, price=1, as_of=friday_close, source="t", fetched_at=saturday)
    Quote.objects.create(asset=msft, price=1, as_of=friday_close - timedelta(hours=5), source="t", fetched_at=saturday)

    report = measure_freshness(saturday, TARGETS, 3600)

    assert report.by_class()["stock"].stale == 1
    assert [s.symbol for s in report.stalest] == ["MSFT"]


def test_inactive_and_quarantined_assets_are_left_out(make_asset) -> None:
    now = IN_SESSION
    make_asset("GONE", is_active=False)
    make_asset("ODD", quarantined_at=now)
    quote(make_asset("AAPL"), age=10, now=now)
    report = measure_freshness(now, TARGETS, 3600)
    assert report.by_class()["stock"].assets == 1 and report.stale == 0


def test_the_query_count_does_not_grow_with_the_assets(make_asset) -> None:
    now = timezone.now()
    for i in range(30):
        quote(make_asset(f"S{i}", "crypto"), age=i * 20, now=now)
    with CaptureQueriesContext(connection) as queries:
        report = measure_freshness(now, TARGETS, 3600)
    assert report.by_class()["crypto"].stale == 17  # ages 260..580 s against 240 s
    assert len(queries) <= 4


def test_a_stock_without_its_last_close_is_named_with_why(make_asset) -> None:
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    friday_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    before = friday_close - timedelta(minutes=3)  # the last tick before the close, and then the stack stopped
    Quote.objects.create(asset=make_asset("AAPL"), price=1, as_of=before, source="t", fetched_at=before)
    make_asset("NEW")

    report = measure_freshness(saturday, TARGETS, 3600, settle_seconds=120)

    assert [(s.symbol, s.why) for s in report.stalest] == [("NEW", "no quote"), ("AAPL", "last close not stored yet")]
    assert report.stalest[1].as_dict()["why"] == "last close not stored yet"


# Moments on both sides of sessions, early closes, holidays and weekends (UTC).
MOMENTS = [
    datetime(2026, 11, 24, 15, 0, tzinfo=UTC),  # Tuesday 10:00 New York, in session
    datetime(2026, 11, 24, 21, 5, tzinfo=UTC),  # 16:05, the closing snapshot not due yet
    datetime(2026, 11, 24, 21, 13, tzinfo=UTC),  # 16:13, the grace for storing it over
    datetime(2026, 11, 25, 4, 0, tzinfo=UTC),  # 23:00, overnight
    datetime(2026, 11, 26, 17, 0, tzinfo=UTC),  # Thanksgiving
    datetime(2026, 11, 27, 18, 5, tzinfo=UTC),  # 13:05 after the early close
    datetime(2026, 11, 28, 17, 0, tzinfo=UTC),  # Saturday
    datetime(2026, 11, 30, 12, 0, tzinfo=UTC),  # Monday 07:00, pre-market
]
# Quotes relative to the moment's last close (as-of offset, fetched-at offset), in minutes.
AROUND_THE_CLOSE = [(-3, -3), (-12, -12), (-3, 1), (-3, 3), (0, 0), (0, 3), (-30, 60), (-9, 3), (-11, 3), (5, 5)]


@pytest.mark.parametrize("now", MOMENTS, ids=lambda m: m.isoformat())
def test_the_databases_count_is_measure_staleness_per_asset(make_asset, now: datetime) -> None:
    clock = market_clock("XNYS", now)
    anchor = now if clock.in_session else clock.last_close
    expected = {}
    for i, (as_of_min, fetched_min) in enumerate(AROUND_THE_CLOSE):
        as_of, fetched = anchor + timedelta(minutes=as_of_min), anchor + timedelta(minutes=fetched_min)
        if fetched > now:
            continue  # nothing is stored in the future
        asset = make_asset(f"S{i}", exchange="XNYS")
        Quote.objects.create(asset=asset, price=1, as_of=as_of, source="t", fetched_at=fetched)
        staleness = measure_staleness(as_of, clock, 600, fetched_at=fetched, settle_seconds=120)
        expected[asset.symbol] = staleness.stale

    report = measure_freshness(now, TARGETS, 3600, settle_seconds=120)

    assert {s.symbol for s in report.stalest} == {symbol for symbol, stale in expected.items() if stale}
    assert report.by_class()["stock"].stale == sum(expected.values())
    assert 0 < sum(expected.values()) < len(expected)  # the moment tells fresh from stale quotes
