"""Timestamps read as epoch floats come back as the same aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.market.dbfunctions import EpochSeconds, from_epoch
from backend.market.models import Quote

pytestmark = pytest.mark.django_db


def test_epoch_seconds_round_trip_to_the_microsecond(make_asset) -> None:
    at = datetime(2026, 12, 1, 14, 30, 5, 123456, tzinfo=UTC)
    Quote.objects.create(asset=make_asset("AAPL"), price=Decimal("1"), as_of=at, source="yahoo", fetched_at=at)
    (seconds,) = Quote.objects.annotate(s=EpochSeconds("as_of")).values_list("s", flat=True)
    assert isinstance(seconds, float)
    assert from_epoch(seconds) == at


def test_a_whole_second_comes_back_without_a_fraction(make_asset) -> None:
    """SQLite stores it without a fraction: the read adds none (julianday arithmetic once added ~13 us)."""
    at = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    Quote.objects.create(asset=make_asset("AAPL"), price=Decimal("1"), as_of=at, source="yahoo", fetched_at=at)
    (seconds,) = Quote.objects.annotate(s=EpochSeconds("fetched_at")).values_list("s", flat=True)
    assert seconds == at.timestamp() and from_epoch(seconds) == at


def test_none_stays_none() -> None:
    assert from_epoch(None) is None
