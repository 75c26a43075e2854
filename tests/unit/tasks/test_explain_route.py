"""explain_route answers "why is this asset slow?" from the same decision the dispatcher takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from backend.market.models import Quote

pytestmark = pytest.mark.django_db


def explain(*args: str) -> str:
    out = StringIO()
    call_command("explain_route", *args, stdout=out)
    return out.getvalue()


def test_it_explains_a_stock_on_thanksgiving(make_asset) -> None:
    aapl = make_asset("AAPL", exchange="XNYS")
    close = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    Quote.objects.create(asset=aapl, price=1, as_of=close, source="t", fetched_at=close + timedelta(minutes=3))

    text = explain("AAPL", "--at", "2026-11-26T10:00:00-05:00")

    assert "at 2026-11-26T15:00:00+00:00" in text
    assert "market:     XNYS closed day (holiday: Thanksgiving)" in text
    assert "volatility: volatility unknown (no bars yet)" in text
    assert "staleness:  fresh" in text and "closed day: holds the last close" in text
    assert "decision:   stock closed day (holiday: Thanksgiving), 1 closed day -> none" in text
    assert "run-now:    stock closed day (holiday: Thanksgiving), 1 operator run-now -> low/8" in text


def test_it_explains_a_volatile_crypto_as_urgent(make_asset) -> None:
    btc = make_asset("BTC", "crypto")
    at = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
    Quote.objects.create(asset=btc, price=1, change_24h_pct=Decimal("-12.5"), as_of=at, source="t", fetched_at=at)
    text = explain("btc", "--at", "2026-11-24T23:00:00")  # naive: UTC
    assert "|24h| 12.50%" in text
    assert "decision:   crypto always open, 1 volatile -> high/0" in text


def test_it_refuses_unknown_symbols_and_bad_moments_with_control_characters_escaped(make_asset) -> None:
    make_asset("AAPL")
    with pytest.raises(CommandError, match=r"no asset with symbol 'EVIL\\\\x1b\[2J'"):
        explain("EVIL\x1b[2J")
    with pytest.raises(CommandError) as caught:
        explain("AAPL", "--at", "yesterday\r\nforged")
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)


def test_it_explains_a_stock_added_on_a_holiday(make_asset) -> None:
    make_asset("AAPL", exchange="XNYS")  # added on the holiday: never quoted

    text = explain("AAPL", "--at", "2026-11-26T10:00:00-05:00")

    assert "staleness:  stale (no quote yet)" in text
    assert "decision:   stock closed day (holiday: Thanksgiving), 1 no quote yet -> medium/4" in text
    assert "run-now:" not in text  # the decision already sends


def test_it_answers_as_of_a_past_moment_from_what_was_stored_then(make_asset) -> None:
    aapl = make_asset("AAPL", exchange="XNYS")
    # Fetched on Tuesday afternoon, after the moment asked about (Tuesday morning, in session).
    later = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    Quote.objects.create(asset=aapl, price=1, change_24h_pct=Decimal("9"), as_of=later, source="t", fetched_at=later)

    text = explain("AAPL", "--at", "2026-11-24T15:00:00Z")

    assert "fresh" not in text
    assert (
        "staleness:  unknown at 2026-11-24T15:00:00+00:00: the stored quote is newer "
        "(as of 2026-11-24T20:00:00+00:00, fetched 2026-11-24T20:00:00+00:00) and earlier quotes are not kept"
    ) in text
    assert "volatility: volatility unknown (no bars yet)" in text  # the later quote's 9 % move is not used
    assert "last fetch: none stored by then" in text
    assert "decision:   as if no quote was stored then: stock open, 1 stale -> high/0" in text

    after = explain("AAPL", "--at", "2026-11-24T20:05:00Z")  # a moment after the fetch: judged on it
    assert "staleness:  fresh (age 5m00s, target 1h00m)" in after
    assert "decision:   stock open, 1 volatile -> high/0" in after
