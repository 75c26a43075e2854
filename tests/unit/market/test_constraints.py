"""The database itself refuses NaN, negative prices or volumes and inverted bars."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from backend.market.models import Asset, PriceBar, Quote

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def bar(asset: Asset, **overrides: object) -> PriceBar:
    fields = {"open": "10", "high": "12", "low": "9", "close": "11", "volume": "100", "source": "test"}
    fields.update(overrides)
    return PriceBar(asset=asset, interval="1d", timestamp=NOW, **fields)


def quote(asset: Asset, **overrides: object) -> Quote:
    fields = {"price": Decimal("10"), "as_of": NOW, "fetched_at": NOW, "source": "test"}
    fields.update(overrides)
    return Quote(asset=asset, **fields)


def refused(row) -> bool:
    """Whether the write fails: a CHECK constraint, or Django refusing to bind a Decimal NaN."""
    try:
        with transaction.atomic():
            type(row).objects.bulk_create([row])  # bulk_create skips model validation
    except IntegrityError:
        return True
    except ValidationError:
        # Django will not bind a Decimal NaN at all; the raw-SQL tests below prove the
        # database refuses NaN by itself when something else writes it.
        return True
    return False


@pytest.fixture
def asset(make_asset) -> Asset:
    return make_asset("AAPL")


@pytest.mark.parametrize("price", [Decimal("NaN"), Decimal("-1"), Decimal("0")])
def test_a_quote_price_must_be_finite_and_positive(asset, price) -> None:
    assert refused(quote(asset, price=price))
    assert Quote.objects.count() == 0


def test_a_nan_price_written_as_sql_is_refused_by_the_database(asset) -> None:
    # PostgreSQL says 'NaN' > 0 is true: only the explicit ceiling check keeps it out.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO market_quote (asset_id, price, currency, as_of, source, fetched_at) "
            "VALUES (%s, CAST('NaN' AS NUMERIC), 'USD', %s, 'sql', %s)",
            [asset.pk, NOW, NOW],
        )
    assert Quote.objects.count() == 0


def test_a_nan_bar_written_as_sql_is_refused_by_the_database(asset) -> None:
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO market_pricebar (asset_id, interval, timestamp, open, high, low, close, volume, source) "
            "VALUES (%s, '1d', %s, 10, CAST('NaN' AS NUMERIC), 9, 11, 100, 'sql')",
            [asset.pk, NOW],
        )
    assert PriceBar.objects.count() == 0


def test_a_negative_quote_volume_is_refused(asset) -> None:
    assert refused(quote(asset, volume_24h=Decimal("-5")))


@pytest.mark.parametrize(
    "overrides",
    [{"high": "8"}, {"low": "-1"}, {"volume": "-1"}, {"open": "13"}, {"close": "8"}, {"high": "NaN"}],
)
def test_an_impossible_bar_is_refused(asset, overrides) -> None:
    assert refused(bar(asset, **{k: Decimal(v) for k, v in overrides.items()}))
    assert PriceBar.objects.count() == 0


def test_a_sound_bar_is_stored_once_per_natural_key(asset) -> None:
    assert not refused(bar(asset))
    assert refused(bar(asset))
    assert PriceBar.objects.count() == 1


@pytest.mark.parametrize("symbol", ["AAPL/../x", "", "A B", "aapl", "A\nB"])
def test_the_database_refuses_a_bad_symbol_even_without_validation(asset_types, symbol) -> None:
    assert refused(Asset(symbol=symbol, asset_type=asset_types["stock"]))
