"""On a real worker: an asset deleted while its batch is written costs only itself (issue 20, item 3).

The operator's delete (a second connection, as the admin's request) is held open until the worker's
upsert waits on it, then committed: the delete lands during the statement. Before the fix the batch
failed its foreign key (IntegrityError, not retried) and one dead letter named all 12 symbols.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.deadletters.models import DeadLetter
from backend.fake_provider import FakeProviderServer
from backend.market.models import Asset, IndicatorSnapshot, PriceBar, Quote
from backend.tasks.models import DispatchRun
from backend.tasks.tasks import backfill_history, fetch_quotes
from tests.fixtures.concurrent_delete import deleted_mid_statement
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import WorkerProcess

# The delete lands mid-statement through PostgreSQL's row locks (seen in pg_stat_activity): SQLite locks
# the whole file, so there a concurrent delete comes before or after the worker's statement.
pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

STOCKS = ["AAPL", "AMZN", "GOOGL", "IBM", "JPM", "KO", "META", "MSFT", "NVDA", "TSLA", "V", "WMT"]
VICTIM = "MSFT"


def created(make_asset, symbols: list[str]) -> None:
    """Create the assets and let the backfill each creation queues (and its indicators) finish first:
    the delete under test must hold up the statement under test, not a creation backfill."""
    for symbol in symbols:
        make_asset(symbol, "stock")
    settled = wait_for(lambda: IndicatorSnapshot.objects.filter(asset__symbol__in=symbols).count() == len(symbols))
    assert settled, "the creation backfills did not finish"


def test_a_batch_stores_eleven_and_counts_the_asset_deleted_during_its_upsert_as_gone(
    live_worker: WorkerProcess, providers: FakeProviderServer, make_asset
) -> None:
    created(make_asset, STOCKS)
    now = timezone.now()
    run = DispatchRun.objects.create(
        schedule="test: asset deleted mid-batch",
        slot=now,
        planned=len(STOCKS),
        batches=1,
        deadline=now + timedelta(minutes=10),
    )
    victim = Asset.objects.get(symbol=VICTIM).pk

    with deleted_mid_statement(victim) as delete:
        result = fetch_quotes.apply_async(args=("stock", STOCKS), kwargs={"run_id": run.pk, "batch": 0})
    summary = result.get(timeout=60)

    assert delete.held_up_a_statement, "the delete committed before the worker's upsert reached it"
    assert summary["gone"] == [VICTIM]
    assert summary["stored"] == [s for s in STOCKS if s != VICTIM]
    assert (summary["failed"], summary["rejected"], summary["skipped"]) == ({}, {}, [])
    assert Quote.objects.count() == len(STOCKS) - 1
    run.refresh_from_db()
    outcome = run.batch_outcomes.get()
    assert (run.status, run.done, run.failed) == (DispatchRun.Status.DONE, 11, 1)
    assert outcome.failed == [VICTIM]
    assert not DeadLetter.objects.filter(task_id=result.id).exists()
    assert "IntegrityError" not in live_worker.log()


def test_a_backfill_whose_asset_is_deleted_during_its_write_ends_without_a_dead_letter(
    live_worker: WorkerProcess, providers: FakeProviderServer, make_asset
) -> None:
    created(make_asset, ["IBM"])
    victim = Asset.objects.get(symbol="IBM").pk

    with deleted_mid_statement(victim) as delete:
        result = backfill_history.apply_async(args=("IBM",))
    outcome = result.get(timeout=60)

    assert delete.held_up_a_statement
    assert outcome == {"symbol": "IBM", "stored_bars": 0, "indicators_queued": False}
    assert not PriceBar.objects.exists()
    assert not DeadLetter.objects.filter(task_id=result.id).exists()
    assert "backfill of IBM stored nothing: the asset was deleted while its history was fetched" in live_worker.log()
