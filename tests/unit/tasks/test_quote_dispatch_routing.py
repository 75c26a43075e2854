"""The quote dispatcher sends batches where the routing decision says, with the reason, and notes it on the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from backend.market.models import Asset, Quote
from backend.tasks import tasks
from backend.tasks.accounting import record_outcome
from backend.tasks.models import DispatchRun
from tests.fixtures.ticks import periodic_task, run_dispatch, tick_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

THANKSGIVING_NOON_NY = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


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


def holding_the_close(asset, at: datetime) -> Quote:
    """A quote fetched at ``at``, after the last close had settled (what a closed day's one fetch stores)."""
    return Quote.objects.create(asset=asset, price=1, as_of=at, source="t", fetched_at=at)


def test_a_beat_tick_on_a_holiday_sends_no_stock_fetch_once_the_last_close_is_stored(make_asset, sent) -> None:
    holding_the_close(make_asset("AAPL", exchange="XNYS"), THANKSGIVING_NOON_NY)
    holding_the_close(make_asset("MSFT", exchange="XNAS"), THANKSGIVING_NOON_NY)

    result = dispatch("stock", THANKSGIVING_NOON_NY, from_beat=True)

    assert sent == []
    run = DispatchRun.objects.get(pk=result["run"])
    assert (run.status, run.planned, run.batches) == ("done", 0, 0)
    assert run.note == "stock closed day (holiday: Thanksgiving), 2 closed day -> none"


def test_a_beat_tick_on_a_holiday_fetches_a_last_close_not_stored_yet_once(make_asset, sent) -> None:
    make_asset("AAPL", exchange="XNYS")  # never quoted: added while the market is closed
    wednesday = datetime(2026, 11, 25, 20, 55, tzinfo=UTC)  # 15:55 New York, before Wednesday's close
    holding_the_close(make_asset("MSFT", exchange="XNAS"), wednesday)
    holding_the_close(make_asset("NVDA", exchange="XNAS"), THANKSGIVING_NOON_NY - timedelta(hours=1))

    result = dispatch("stock", THANKSGIVING_NOON_NY, from_beat=True)

    # The never-quoted stock ahead of the backfills a new asset queues in low (medium, any broker);
    # the quote fetched before Wednesday's close settled at low/8; the one holding the close not at all.
    assert [(c["args"], c["queue"], c["priority"]) for c in sent] == [
        (("stock", ["AAPL"]), "medium", 4),
        (("stock", ["MSFT"]), "low", 8),
    ]
    first = "stock closed day (holiday: Thanksgiving), 1 no quote yet -> medium/4"
    refetch = "stock closed day (holiday: Thanksgiving), 1 last close not stored yet -> low/8"
    assert [c["reason"] for c in sent] == [first, refetch]
    run = DispatchRun.objects.get(pk=result["run"])
    assert (run.planned, run.batches) == (2, 2)
    assert run.note == f"{first}; {refetch}; stock closed day (holiday: Thanksgiving), 1 closed day -> none"


def test_an_operator_run_now_on_a_holiday_fetches_at_low_priority(make_asset, sent) -> None:
    make_asset("AAPL", exchange="XNYS")
    holding_the_close(make_asset("MSFT"), THANKSGIVING_NOON_NY)
    result = dispatch("stock", THANKSGIVING_NOON_NY, from_beat=False)

    assert [(c["args"][1], c["queue"], c["priority"]) for c in sent] == [(["AAPL"], "medium", 4), (["MSFT"], "low", 8)]
    reason = "stock closed day (holiday: Thanksgiving), 1 operator run-now -> low/8"
    assert sent[1]["reason"] == reason
    assert "operator run-now" in DispatchRun.objects.get(pk=result["run"]).note


# (first tick of the closed stretch, the moment extended trading resumes), New York time
CLOSED_STRETCHES = {
    "weekend": ("2026-11-28 04:00", "2026-11-30 04:00"),  # after Friday's early close -> Monday's pre-market
    "Thanksgiving": ("2026-11-26 00:00", "2026-11-27 04:00"),  # Thursday -> Friday's pre-market
}


@pytest.mark.parametrize("stretch", list(CLOSED_STRETCHES))
def test_a_closed_stretch_fetches_every_stock_once_and_then_nothing_until_trading_resumes(
    make_asset, sent, stretch: str
) -> None:
    for symbol, exchange in (("AAPL", "XNYS"), ("MSFT", "XNAS"), ("NVDA", "XNAS")):
        make_asset(symbol, exchange=exchange)
    first, resumes = (datetime.fromisoformat(t).replace(tzinfo=NY).astimezone(UTC) for t in CLOSED_STRETCHES[stretch])

    result = dispatch("stock", first, from_beat=True)
    assert [(c["args"][1], c["queue"], c["priority"]) for c in sent] == [(["AAPL", "MSFT", "NVDA"], "medium", 4)]
    for asset in Asset.objects.all():  # what the batch stores a minute later, and reports
        holding_the_close(asset, first + timedelta(minutes=1))
    record_outcome(result["run"], 0, done=["AAPL", "MSFT", "NVDA"])
    sent.clear()

    tick = first + timedelta(minutes=5)
    while tick < resumes:  # a beat tick every 15 minutes of the closed stretch and the night after it
        run = DispatchRun.objects.get(pk=dispatch("stock", tick, from_beat=True)["run"])
        assert run.status == "done" and run.planned == 0, (tick, run.note)
        tick += timedelta(minutes=15)
    assert sent == []

    dispatch("stock", resumes, from_beat=True)  # pre-market: its own cadence again
    assert [(c["args"][1], c["queue"], c["priority"]) for c in sent] == [(["AAPL", "MSFT", "NVDA"], "medium", 5)]


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
