"""Volatility and staleness per asset from stored data, and exchange codes refused when unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from backend.common.exchange_sessions import market_clock
from backend.market.bar_stats import sample_stdev
from backend.market.conditions import (
    Level,
    Thresholds,
    load_conditions,
    measure_staleness,
    measure_volatility,
)
from backend.market.models import Asset, PriceBar, Quote

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
FRIDAY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
LIMITS = Thresholds(change_24h_pct=4.0, realised_pct=2.5)


def test_no_bars_is_volatility_unknown_not_an_error() -> None:
    assert measure_volatility(None, [], LIMITS, 5).level is Level.UNKNOWN
    assert measure_volatility(Decimal("1.0"), [Decimal(100)], LIMITS, 5).level is Level.UNKNOWN


def test_a_big_24h_move_is_volatile_even_before_bars_exist() -> None:
    assert measure_volatility(Decimal("-7.5"), [], LIMITS, 5).level is Level.VOLATILE


def test_the_sample_stdev_matches_the_standard_library() -> None:
    import statistics

    for values in ([1.0, 2.0], [0.5, -1.25, 3.0, 2.0, 0.0], [100.0 + i % 7 * 0.3 for i in range(20)], [2.0, 2.0, 2.0]):
        assert sample_stdev(values) == pytest.approx(statistics.stdev(values), rel=1e-12, abs=1e-12)


def test_realised_volatility_of_recent_bars_decides_calm_or_volatile() -> None:
    calm = [100, 100.5, 100.2, 100.9, 100.4, 100.8]
    wild = [100, 108, 97, 110, 95, 104]
    assert measure_volatility(Decimal("0.5"), calm, LIMITS, 5).level is Level.CALM
    measured = measure_volatility(Decimal("0.5"), wild, LIMITS, 5)
    assert measured.level is Level.VOLATILE and measured.realised_pct > 2.5
    assert "realised" in measured.describe()


def test_in_session_a_quote_older_than_its_target_is_stale() -> None:
    clock = market_clock("XNYS", TUESDAY_10_NY)
    assert not measure_staleness(TUESDAY_10_NY - timedelta(minutes=5), clock, 600).stale
    assert measure_staleness(TUESDAY_10_NY - timedelta(minutes=11), clock, 600).stale
    assert measure_staleness(None, clock, 600).stale


def test_outside_the_session_the_last_close_is_fresh() -> None:
    clock = market_clock("XNYS", SATURDAY)
    after_close = FRIDAY_CLOSE + timedelta(minutes=5)

    def stale(as_of: datetime, fetched_at: datetime) -> bool:
        return measure_staleness(as_of, clock, 600, fetched_at=fetched_at, settle_seconds=120).stale

    assert not stale(FRIDAY_CLOSE, after_close)  # Yahoo after the close: stamped at the close
    assert not stale(FRIDAY_CLOSE, SATURDAY)  # the same close fetched on the Saturday
    assert not stale(FRIDAY_CLOSE - timedelta(seconds=30), after_close)  # last trade at 12:59:30
    assert not stale(SATURDAY, SATURDAY)  # a provider that stamps the minute it was asked
    assert stale(FRIDAY_CLOSE - timedelta(hours=3), SATURDAY)  # the morning's price, not the close
    # Fetched before the close had settled: a price of Friday, not Friday's close.
    assert stale(FRIDAY_CLOSE - timedelta(minutes=2), FRIDAY_CLOSE - timedelta(minutes=2))
    assert stale(FRIDAY_CLOSE, FRIDAY_CLOSE + timedelta(seconds=30))
    assert measure_staleness(FRIDAY_CLOSE, clock, 600, fetched_at=SATURDAY).note == "closed day: holds the last close"


def test_after_the_close_a_quote_fresh_at_the_close_counts_until_the_snapshot_is_due_and_stored() -> None:
    close = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # a Tuesday, 16:00 New York
    fetched = close - timedelta(minutes=3)  # the last in-session tick

    def staleness(minutes_after_close: int):
        clock = market_clock("XNYS", close + timedelta(minutes=minutes_after_close))
        return measure_staleness(fetched, clock, 600, fetched_at=fetched, settle_seconds=120)

    # The snapshot is due 2 min after the close and may take a target (10 min) to be stored.
    assert not staleness(5).stale and not staleness(11).stale
    assert staleness(12).stale and staleness(12).note == "post-market: last close not stored yet"
    assert staleness(60 * 9).stale  # overnight, still without the close


def test_no_quote_is_stale_on_a_closed_day() -> None:
    assert measure_staleness(None, market_clock("XNYS", SATURDAY), 600).stale


def test_crypto_staleness_ignores_the_stock_calendar() -> None:
    clock = market_clock("CRYPTO", SATURDAY)
    assert measure_staleness(SATURDAY - timedelta(minutes=11), clock, 600).stale


@pytest.mark.django_db
def test_load_conditions_reads_quotes_and_bars_of_many_assets(make_asset, django_assert_max_num_queries) -> None:
    aapl, _msft, btc = (
        make_asset("AAPL", exchange="XNYS"),
        make_asset("MSFT", exchange="XNAS"),
        make_asset("BTC", "crypto"),
    )
    Quote.objects.create(
        asset=aapl, price=1, change_24h_pct=Decimal("6"), as_of=TUESDAY_10_NY, source="t", fetched_at=TUESDAY_10_NY
    )
    Quote.objects.create(
        asset=btc,
        price=1,
        change_24h_pct=Decimal("1"),
        as_of=TUESDAY_10_NY - timedelta(hours=1),
        source="t",
        fetched_at=TUESDAY_10_NY,
    )
    for day in range(8):
        close = Decimal(100 + day % 2)
        PriceBar.objects.create(
            asset=btc,
            interval="1d",
            timestamp=TUESDAY_10_NY - timedelta(days=day + 1),
            open=close,
            high=close,
            low=close,
            close=close,
            volume=1,
            source="t",
        )
    assets = Asset.objects.select_related("asset_type").order_by("symbol")

    with django_assert_max_num_queries(3):
        conditions = {c.symbol: c for c in load_conditions(assets, TUESDAY_10_NY, {"crypto": 240}, 600)}

    assert conditions["AAPL"].volatility.level is Level.VOLATILE and not conditions["AAPL"].staleness.stale
    assert conditions["MSFT"].volatility.level is Level.UNKNOWN and conditions["MSFT"].staleness.stale
    assert conditions["MSFT"].clock.exchange == "XNAS"
    assert conditions["BTC"].volatility.level is Level.CALM and conditions["BTC"].volatility.bars == 8
    assert conditions["BTC"].staleness.stale and conditions["BTC"].clock.exchange == "CRYPTO"


@pytest.mark.django_db
def test_an_unknown_exchange_code_is_refused_with_the_known_codes(make_asset) -> None:
    asset = make_asset("AAPL")
    asset.exchange = "NASDAQ"
    with pytest.raises(ValidationError) as caught:
        asset.full_clean()
    message = str(caught.value)
    assert "XNYS" in message and "XNAS" in message and "CRYPTO" in message
    with pytest.raises(IntegrityError):
        Asset.objects.filter(pk=asset.pk).update(exchange="NASDAQ")
