"""Market-aware quote routing on a real worker: a closed day fetches the last close once; volatile assets go urgent."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from backend.market.models import Asset, Quote
from backend.tasks import tasks
from backend.tasks.models import DispatchRun
from tests.fixtures.ticks import periodic_task, run_dispatch, tick_headers
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

THANKSGIVING_NOON_NY = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)


def beat_tick(asset_class: str, at: datetime) -> dict:
    """Run the dispatcher here as beat's tick at ``at`` would run it; its batches go to the real worker."""
    headers = tick_headers(periodic_task(f"quotes: {asset_class} (routing test)", 120), at)
    return run_dispatch(asset_class, f"routing-test-{asset_class}-{at.timestamp()}", headers, at)


def _stored(raw: str):
    # The result backend stores the repr of the arguments, JSON-quoted.
    value = json.loads(raw)
    return ast.literal_eval(value) if isinstance(value, str) else value


@pytest.fixture(autouse=True)
def batch_results(settings) -> None:
    """Dispatches here run in the test process: their batches keep a result row to read back."""
    settings.BATCH_TASK_RESULTS = True


def fetches() -> list[tuple[list, dict]]:
    """(args, kwargs) of every quotes.fetch the worker finished."""
    rows = TaskResult.objects.filter(task_name="quotes.fetch", status="SUCCESS")
    return [(list(_stored(r.task_args)), _stored(r.task_kwargs)) for r in rows]


def bulk_assets(asset_types, *specs: tuple[str, str, str]) -> list[Asset]:
    """Assets created without signals: no creation backfill, so no bars (volatility stays unknown)."""
    return Asset.objects.bulk_create(
        Asset(
            symbol=symbol,
            name=symbol,
            asset_type=asset_types[asset_class],
            exchange=exchange,
            binance_symbol=f"{symbol}USDT" if asset_class == "crypto" else "",
            coingecko_id=symbol.lower() if asset_class == "crypto" else "",
        )
        for symbol, asset_class, exchange in specs
    )


def test_a_closed_day_fetches_each_stocks_last_close_once_and_then_sends_nothing(live_worker, asset_types) -> None:
    bulk_assets(asset_types, ("AAPL", "stock", "XNYS"), ("MSFT", "stock", "XNAS"), ("BTC", "crypto", "CRYPTO"))

    stocks = beat_tick("stock", THANKSGIVING_NOON_NY)
    crypto = beat_tick("crypto", THANKSGIVING_NOON_NY)

    # Crypto trades on Thanksgiving, and the stocks' last close (Wednesday's) is not stored yet: both
    # batches reach the worker and are stored, the never-quoted stocks' in medium (ahead of backfills).
    closed = wait_for(lambda: all(DispatchRun.objects.get(pk=r["run"]).status == "done" for r in (stocks, crypto)))
    assert closed, live_worker.log()[-3000:]
    assert wait_for(lambda: len(fetches()) == 2)
    assert sorted(fetches(), key=lambda f: f[0][0]) == [
        (["crypto", ["BTC"]], {"run_id": crypto["run"], "batch": 0, "reason": "crypto always open, 1 stale -> high/0"}),
        (
            ["stock", ["AAPL", "MSFT"]],
            {
                "run_id": stocks["run"],
                "batch": 0,
                "reason": "stock closed day (holiday: Thanksgiving), 2 no quote yet -> medium/4",
            },
        ),
    ]
    assert Quote.objects.filter(asset__asset_type__code="stock").count() == 2
    assert DispatchRun.objects.get(pk=stocks["run"]).done == 2

    # The next tick of the holiday: the close is in, nothing to ask until the next session; the run says why.
    later = beat_tick("stock", THANKSGIVING_NOON_NY + timedelta(minutes=5))
    run = DispatchRun.objects.get(pk=later["run"])
    assert (run.status, run.planned, run.batches) == ("done", 0, 0)
    assert run.note == "stock closed day (holiday: Thanksgiving), 2 closed day -> none"
    assert len(fetches()) == 2


def test_a_volatile_asset_lands_in_the_urgent_batch(live_worker, asset_types) -> None:
    assets = bulk_assets(asset_types, *((s, "crypto", "") for s in ("BTC", "ETH", "SOL")))
    now = timezone.now()
    for asset in assets:
        change = Decimal("-15") if asset.symbol == "SOL" else Decimal("0.2")
        Quote.objects.create(asset=asset, price=1, change_24h_pct=change, as_of=now, source="t", fetched_at=now)

    result = tasks.dispatch_quotes.apply(args=("crypto",)).get(timeout=60)

    assert wait_for(lambda: DispatchRun.objects.get(pk=result["run"]).status == "done"), live_worker.log()[-3000:]
    batches = {tuple(args[1]): kwargs["reason"] for args, kwargs in fetches()}
    assert batches == {
        ("SOL",): "crypto always open, 1 volatile -> high/0",
        ("BTC", "ETH"): "crypto always open, 2 volatility unknown -> high/2",
    }
    assert DispatchRun.objects.get(pk=result["run"]).done == 3
