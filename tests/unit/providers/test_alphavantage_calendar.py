"""Alpha Vantage's trading day becomes that day's close by the exchange calendar, not a fixed hour."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.providers.alphavantage import _trading_day_close

LATER = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "close"),
    [
        ("2026-11-24", datetime(2026, 11, 24, 21, 0, tzinfo=UTC)),  # EST: 16:00 New York
        ("2026-07-02", datetime(2026, 7, 2, 20, 0, tzinfo=UTC)),  # EDT
        ("2026-11-27", datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),  # early close, 13:00 New York
        ("2026-12-24", datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),  # early close
        ("2026-11-26", datetime(2026, 11, 25, 21, 0, tzinfo=UTC)),  # Thanksgiving: the last close before it
    ],
)
def test_the_trading_day_maps_to_its_calendar_close(day: str, close: datetime) -> None:
    assert _trading_day_close(day, now=LATER) == close


def test_during_the_session_the_stamp_is_now() -> None:
    now = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert _trading_day_close("2026-11-24", now=now) == now
