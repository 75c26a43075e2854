"""The quote dispatcher sends batches where the routing decision says, with the reason, and notes it on the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.market.models import Quote
from backend.tasks import tasks
from backend.tasks.runs import DispatchRun
from tests.fixtures.ticks import periodic_task, run_dispatch, tick_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

THANKSGIVING_NOON_NY = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every quotes.fetch the dispatcher sends: args, kwargs and routing options."""
    calls: list[dict] = []
    monkeypatch.setattr(
        tasks.fetch_quotes,
        "apply_async",
        lambda args, kwargs, **options: calls.append({**options, "args": args, **kwargs}),
    )
    return calls


def dispatch(asset_class: str, at: datetime, *, from_beat: bool) -> dict:
    headers = tick_headers(periodic_task(f"quotes: {asset_class}", 300), at, from_beat=from_beat)
    return run_dispatch(asset_class, f"d-{at.timestamp()}-{from_beat}", headers, at)


def test_a_beat_tick_on_a_holiday_sends_no_stock_fetch_and_the_run_says_why(make_asset, sent) -> None:
    make_asset("AAPL", exchange="XNYS")
    make_asset("MSFT", exchange="XNAS")

    result = dispatch("stock", THANKSGIVING_NOON_NY, from_beat=True)

    assert sent == []
    run = DispatchRun.objects.get(pk=result["run"])
    assert (run.status, run.planned, run.batches) == ("done", 0, 0)
    assert run.note == "stock closed day (holiday: Thanksgiving), 2 closed day -> none"


def test_an_operator_run_now_on_a_holiday_fetches_at_low_priority(make_asset, sent) -> None:
    make_asset("AAPL", exchange="XNYS")
    Quote.objects.create(
        asset=make_asset("MSFT"), price=1, as_of=THANKSGIVING_NOON_NY, source="t", fetched_at=THANKSGIVING_NOON_NY
    )
    result = dispatch("stock", THANKSGIVING_NOON_NY, from_beat=False)

    assert {tuple(c["args"][1]) for c in sent} == {("AAPL", "MSFT")}
    assert [(c["queue"], c["priority"]) for c in sent] == [("low", 8)]
    assert sent[0]["reason"] == "stock closed day (holiday: Thanksgiving), 2 operator run-now -> low/8"
    assert "operator run-now" in DispatchRun.objects.get(pk=result["run"]).note


def test_a_volatile_crypto_rides_in_an_urgent_batch_with_its_reason(make_asset, sent, settings) -> None:
    settings.QUOTE_BATCH_SIZE = 2
    for symbol in ("ADA", "BTC", "DOT", "ETH", "SOL"):
        asset = make_asset(symbol, "crypto")
        change = Decimal("-14") if symbol == "SOL" else Decimal("0.3")
        fetched = TUESDAY_10_NY - timedelta(seconds=30)
        Quote.objects.create(asset=asset, price=1, change_24h_pct=change, as_of=fetched, source="t", fetched_at=fetched)

    result = dispatch("crypto", TUESDAY_10_NY, from_beat=True)

    first = sent[0]
    assert (first["queue"], first["priority"], first["args"]) == ("high", 0, ("crypto", ["SOL"]))
    assert first["reason"] == "crypto always open, 1 volatile -> high/0"
    assert first["batch"] == 0 and first["run_id"] == result["run"]
    calm = [tuple(c["args"][1]) for c in sent[1:]]
    assert calm == [("ADA", "BTC"), ("DOT", "ETH")]
    assert all((c["queue"], c["priority"]) == ("high", 2) for c in sent[1:])
    run = DispatchRun.objects.get(pk=result["run"])
    assert (run.planned, run.batches) == (5, 3)
    assert run.note == "crypto always open, 1 volatile -> high/0; crypto always open, 2 volatility unknown -> high/2"
