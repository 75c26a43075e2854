"""The fake provider server follows the real exchange calendar: holidays have no bars, early closes end early."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from backend.fake_provider import FakeProviderServer

THANKSGIVING = "2026-11-26"


def test_holidays_have_no_bars_and_the_early_close_ends_the_session() -> None:
    after_the_early_close = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)  # 14:00 New York
    with FakeProviderServer(now=after_the_early_close) as fake, httpx.Client(base_url=fake.url, timeout=5.0) as http:
        params = {"function": "TIME_SERIES_DAILY", "symbol": "IBM", "apikey": "k"}
        series = http.get("/alphavantage/query", params=params).json()["Time Series (Daily)"]
        chart = http.get("/yahoo/v8/finance/chart/AAPL", params={"range": "1mo", "interval": "1d"}).json()

    assert THANKSGIVING not in series and "2026-11-25" in series and "2026-11-27" in series
    result = chart["chart"]["result"][0]
    assert result["meta"]["regularMarketTime"] == int(datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp())
    days = {datetime.fromtimestamp(t, UTC).date().isoformat() for t in result["timestamp"]}
    assert THANKSGIVING not in days and "2026-11-27" in days


def test_the_session_day_turns_at_the_open_though_answered_per_minute() -> None:
    """The fake answers the session day per minute; the day still turns at the open, not a minute off."""
    from datetime import date

    from backend.fake_provider.market import latest_session_day, session_open_ts

    opens = session_open_ts(date(2026, 12, 2))  # a Wednesday, 09:30 New York
    assert latest_session_day(opens - 0.5) == date(2026, 12, 1)
    assert latest_session_day(opens + 0.5) == date(2026, 12, 2)
    assert latest_session_day(opens + 30.0) == date(2026, 12, 2)
    assert latest_session_day(opens - 30.0) == date(2026, 12, 1)


def test_the_yahoo_client_reads_a_weekend_of_one_minute_bars_as_no_bars() -> None:
    """The real client against the fake's no-trade answer: an empty list, not a permanent error."""
    from backend.providers.http import build_client
    from backend.providers.yahoo import YahooClient

    sunday_noon = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)  # 12:00 New York, the market shut since Friday
    with FakeProviderServer(now=sunday_noon) as fake, build_client(timeout=5.0) as http:
        client = YahooClient(http, base_url=f"{fake.url}/yahoo", clock=lambda: sunday_noon)
        assert client.fetch_bars("AAPL", interval="1m", limit=120) == []
        assert len(client.fetch_bars("AAPL", interval="1d", limit=5)) == 5  # the same client still reads days
        assert [r["status"] for r in fake.requests("yahoo")] == [200, 200]
