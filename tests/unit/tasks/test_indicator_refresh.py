"""The hourly fan-out covers every active asset from the database, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.market.models import Asset, IndicatorSnapshot, PriceBar
from backend.tasks.indicator_refresh import compute_indicator_chunk, load_closes, plan_indicator_chunks

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


def add_bars(asset: Asset, closes: list[float]) -> None:
    PriceBar.objects.bulk_create(
        PriceBar(
            asset=asset,
            interval="1d",
            timestamp=DAY0 + timedelta(days=i),
            open=Decimal(str(c)),
            high=Decimal(str(c)),
            low=Decimal(str(c)),
            close=Decimal(str(c)),
            volume=Decimal(1),
            source="test",
        )
        for i, c in enumerate(closes)
    )


@pytest.fixture
def fifty_assets(make_asset) -> list[Asset]:
    assets = []
    for i in range(50):
        asset = make_asset(f"S{i:02d}", "stock" if i % 2 else "crypto")
        add_bars(asset, [100 + i + (day % 7) for day in range(60)])
        assets.append(asset)
    return assets


def test_the_plan_covers_every_active_asset_in_chunks(fifty_assets) -> None:
    chunks = plan_indicator_chunks(20)
    assert [len(c) for c in chunks] == [20, 20, 10]
    assert sorted(i for c in chunks for i in c) == sorted(a.pk for a in fifty_assets)


def test_computing_every_chunk_stores_one_snapshot_per_active_asset(fifty_assets) -> None:
    for chunk in plan_indicator_chunks(20):
        compute_indicator_chunk(chunk)
    assert IndicatorSnapshot.objects.count() == 50
    snap = IndicatorSnapshot.objects.get(asset=fifty_assets[0])
    assert snap.as_of == DAY0 + timedelta(days=59)
    assert snap.bars_used == 60
    assert snap.sma is not None and 0 <= snap.rsi <= 100


def test_a_deactivated_asset_leaves_the_next_run(fifty_assets) -> None:
    Asset.objects.filter(pk=fifty_assets[7].pk).update(is_active=False)
    planned = [i for c in plan_indicator_chunks(100) for i in c]
    assert len(planned) == 49 and fifty_assets[7].pk not in planned


def test_a_rerun_upserts_instead_of_duplicating(fifty_assets) -> None:
    ids = [a.pk for a in fifty_assets]
    compute_indicator_chunk(ids)
    compute_indicator_chunk(ids)
    assert IndicatorSnapshot.objects.count() == 50


def test_warm_up_stores_null_never_zero_or_nan(make_asset) -> None:
    asset = make_asset("SHORT")
    add_bars(asset, [10, 11, 12, 13, 12, 11, 12, 13, 14, 15, 16, 15, 14, 15, 16, 17])  # 16 bars
    compute_indicator_chunk([asset.pk])
    snap = IndicatorSnapshot.objects.get(asset=asset)
    assert snap.rsi is not None  # RSI(14) needs 15 closes
    assert snap.sma is None and snap.macd is None and snap.bb_upper is None  # need 20 / 34 / 20


def test_load_closes_returns_the_latest_n_oldest_first(make_asset) -> None:
    asset = make_asset("AAPL")
    add_bars(asset, [float(v) for v in range(1, 11)])
    closes, last_bar = load_closes([asset.pk], "1d", 3)[asset.pk]
    assert list(closes) == [8.0, 9.0, 10.0]
    assert last_bar == DAY0 + timedelta(days=9)


def test_an_asset_without_bars_is_reported_not_failed(make_asset) -> None:
    asset = make_asset("NEW")
    summary = compute_indicator_chunk([asset.pk])
    assert summary.stored == 0 and summary.without_bars == [asset.pk]
