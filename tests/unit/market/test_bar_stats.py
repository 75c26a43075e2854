"""Realised volatility of recent bars: PostgreSQL's one aggregate query agrees with reading the closes."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.market.bar_stats import _aggregate_in_postgresql, _read_and_reduce, recent_bar_stats, stats_of
from backend.market.models import Asset, PriceBar

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


def bars(asset: Asset, closes: list[str], interval: str = "1d") -> None:
    """Daily bars ending the day of AT, oldest first."""
    PriceBar.objects.bulk_create(
        PriceBar(
            asset=asset,
            interval=interval,
            timestamp=AT.replace(hour=0) - timedelta(days=len(closes) - 1 - i),
            open=Decimal(c),
            high=Decimal(c),
            low=Decimal(c),
            close=Decimal(c),
            volume=Decimal(1),
            source="test",
        )
        for i, c in enumerate(closes)
    )


@pytest.fixture
def three_assets(make_asset, settings):
    settings.VOLATILITY_BARS, settings.VOLATILITY_INTERVAL = 20, "1d"
    many, two, none = make_asset("MANY"), make_asset("TWO"), make_asset("NONE")
    closes = [str(100 + (i * 37 % 11) - 5 + i / 4) for i in range(25)]
    bars(many, closes)
    bars(two, ["10", "11"])
    return many, two, none, [float(c) for c in closes]


@pytest.mark.postgresql  # one of the two ways is PostgreSQL's own aggregate
def test_both_ways_give_the_returns_stdev_of_the_last_n_closes(three_assets) -> None:
    many, two, none, closes = three_assets
    ids = [many.pk, two.pk, none.pk]
    since = AT - timedelta(days=40)
    in_database = _aggregate_in_postgresql(AT, since, 20, "1d", None, ids)
    in_python = _read_and_reduce(AT, since, 20, "1d", None, ids)
    last = closes[-20:]
    expected = statistics.stdev([100 * (b / a - 1) for a, b in zip(last, last[1:], strict=False)])
    for stats in (in_database, in_python):
        assert set(stats) == {many.pk, two.pk}  # no bars, no entry
        assert stats[many.pk].bars == 20 and stats[many.pk].realised_pct == pytest.approx(expected, rel=1e-9)
        assert stats[two.pk].bars == 2 and stats[two.pk].realised_pct is None  # one return: no stdev


def test_a_query_of_assets_selects_the_same_as_their_ids(three_assets) -> None:
    many, two, _, _ = three_assets
    by_query = recent_bar_stats(AT, scope=Asset.objects.filter(symbol__in=["MANY", "TWO"]))
    assert by_query == recent_bar_stats(AT, ids=[many.pk, two.pk])
    assert recent_bar_stats(AT, scope=Asset.objects.filter(symbol="TWO")) == {two.pk: by_query[two.pk]}


def test_bars_after_the_moment_or_of_another_interval_do_not_count(three_assets) -> None:
    many, _, _, closes = three_assets
    bars(many, ["1", "500"], interval="1h")
    earlier = AT - timedelta(days=5)
    stats, expected = recent_bar_stats(earlier, ids=[many.pk])[many.pk], stats_of(closes[-25:-5])
    assert stats.bars == expected.bars == 20
    assert stats.realised_pct == pytest.approx(expected.realised_pct, rel=1e-9)
