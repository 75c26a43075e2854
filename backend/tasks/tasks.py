"""Every Celery task of the platform, in one module that reads like a table of contents.

Each task is a few lines that call plain functions elsewhere. Tasks take symbols, ids and plain
JSON, never model instances or keys; the retry policy lives in the decorator. Dispatchers pick each
batch's queue and priority through ``routing`` (``decide`` for quotes, from the market's state;
``route_for`` for the rest); no task hard-codes a queue.
"""

from __future__ import annotations

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from backend.core.celery import app
from backend.providers.errors import TransientProviderError

from . import backfill, deferral, indicator_refresh, maintenance, news, quote_plan, quotes
from .dispatching import dispatch_batches, record_outcome, run_once_per_tick
from .policy import ReliableTask
from .routing import WorkKind, route_for
from .ticks import origin_of

# Transient faults only: a permanent one (unknown symbol, bad key, malformed reply) fails fast.
RETRY_POLICY = {
    "autoretry_for": (TransientProviderError,),
    "retry_backoff": 2,
    "retry_backoff_max": settings.TASK_RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": settings.TASK_MAX_RETRIES,
}


# Batch tasks a dispatcher sends: their outcome is counted on the dispatch run (per batch, per item)
# and a final failure becomes a dead letter, so a SUCCESS row per batch would only cost two database
# writes per task. Failures and retries still get their row (store_errors_even_if_ignored); a batch
# sent by hand (an operator, a replay) keeps its result too. BATCH_TASK_RESULTS turns rows back on.
BATCH_TASK_OPTIONS = {"store_errors_even_if_ignored": True}


def batch_send_options() -> dict[str, object]:
    """``apply_async`` options every dispatcher adds to the batches it sends."""
    return {"ignore_result": not settings.BATCH_TASK_RESULTS}


def backoff(task: ReliableTask) -> float:
    """The delay RETRY_POLICY's autoretry would use for ``task``'s next retry (ReliableTask clamps it)."""
    return get_exponential_backoff_interval(
        factor=task.retry_backoff,
        retries=task.request.retries,
        maximum=task.retry_backoff_max,
        full_jitter=task.retry_jitter,
    )


# --- quotes -----------------------------------------------------------------------------------------
@app.task(base=ReliableTask, bind=True, name="quotes.dispatch")
def dispatch_quotes(self: ReliableTask, asset_class: str) -> dict[str, object]:
    """Send one fetch per batch of assets sharing a routing decision (session, volatility, staleness)."""
    origin = origin_of(self.request)
    return quote_plan.dispatch_routed_quotes(
        asset_class,
        schedule=origin.schedule or f"quotes.dispatch:{asset_class}",
        tick=origin.tick,
        task_id=self.request.id or "",
        run_now=not origin.from_beat,
        send=lambda symbols, run_id, batch, decision: fetch_quotes.apply_async(
            args=(asset_class, symbols),
            kwargs={"run_id": run_id, "batch": batch, "reason": decision.reason},
            **decision.options(),
            **batch_send_options(),
        ),
    )


@app.task(base=ReliableTask, bind=True, name="quotes.fetch", **RETRY_POLICY, **BATCH_TASK_OPTIONS)
def fetch_quotes(
    self: ReliableTask,
    asset_class: str,
    symbols: list[str],
    run_id: int | None = None,
    batch: int | None = None,
    reason: str = "",
) -> dict[str, object]:
    """Fetch and upsert quotes (and the running daily bar) for one batch; retry only what failed transiently.

    Stored symbols count as done, rejected, skipped and gone ones as failed; symbols that failed transiently
    are retried by this same task (same id, run and batch) with backoff and the provider's Retry-After.
    When the retries run out, ``on_failure`` counts that subset as failed and its dead letter names it.
    ``reason`` is the routing decision that sent the batch, kept through retries so Flower shows it.
    """
    summary = quotes.refresh_quotes(asset_class, symbols)
    record_outcome(run_id, batch, done=summary.stored, failed=[*summary.rejected, *summary.skipped, *summary.gone])
    if summary.failed:
        retry_args = (asset_class, list(summary.failed))
        retry_kwargs = {"run_id": run_id, "batch": batch, "reason": reason}
        # An attempt that asked no provider (all paused or with their circuit open) waits without a retry.
        deferral.defer_if_nobody_asked(
            self,
            asked_nobody=summary.asked_nobody,
            retry_after=summary.retry_after,
            args=retry_args,
            kwargs=retry_kwargs,
            what=f"{len(summary.failed)} {asset_class} symbols",
        )
        raise self.retry(
            args=retry_args, kwargs=retry_kwargs, exc=quotes.transient_fault(summary), countdown=backoff(self)
        )
    return summary.as_dict()


# --- news -------------------------------------------------------------------------------------------
@app.task(base=ReliableTask, bind=True, name="news.fetch", **RETRY_POLICY)
def fetch_news(self: ReliableTask) -> dict[str, object]:
    """Fetch recent articles about the active assets; upsert by URL and link them to the assets named."""
    return run_once_per_tick(self.request, name=self.name, work=lambda: news.refresh_news().as_dict())


# --- indicators ------------------------------------------------------------------------------------
@app.task(base=ReliableTask, bind=True, name="indicators.dispatch")
def dispatch_indicators(self: ReliableTask) -> dict[str, object]:
    """Send one compute task per chunk of every active asset (no symbol list anywhere)."""
    route = route_for(WorkKind.INDICATORS)
    origin = origin_of(self.request)
    return dispatch_batches(
        origin.schedule or "indicators.dispatch",
        tick=origin.tick,
        task_id=self.request.id or "",
        plan=lambda: indicator_refresh.plan_indicator_chunks(settings.INDICATOR_CHUNK_SIZE),
        send=lambda asset_ids, run_id, batch: compute_indicators.apply_async(
            args=(asset_ids,), kwargs={"run_id": run_id, "batch": batch}, **route.as_options(), **batch_send_options()
        ),
    )


@app.task(base=ReliableTask, name="indicators.compute", **BATCH_TASK_OPTIONS)
def compute_indicators(asset_ids: list[int], run_id: int | None = None, batch: int | None = None) -> dict[str, object]:
    """Compute SMA, EMA, RSI, MACD and Bollinger Bands for a chunk of assets and upsert the snapshots."""
    summary = indicator_refresh.compute_indicator_chunk(asset_ids)
    unserved = set(summary.without_bars) | set(summary.refused) | set(summary.gone)
    record_outcome(
        run_id, batch, done=[a for a in asset_ids if a not in unserved], failed=[a for a in asset_ids if a in unserved]
    )
    return summary.as_dict()


# --- history ----------------------------------------------------------------------------------------
@app.task(base=ReliableTask, name="history.backfill", **RETRY_POLICY)
def backfill_history(symbol: str) -> dict[str, object]:
    """Fetch enough bars of one asset for its indicators, then queue them (on creation, re-activation, on demand)."""
    stored = backfill.backfill_asset(symbol)
    asset_id = backfill.active_asset_id(symbol) if stored else None
    if asset_id is not None:  # a new asset gets indicators now, not at the next hourly fan-out
        compute_indicators.apply_async(args=([asset_id],), **route_for(WorkKind.INDICATORS).as_options())
    return {"symbol": symbol, "stored_bars": stored, "indicators_queued": asset_id is not None}


def enqueue_backfill(symbol: str) -> None:
    """Queue a backfill where routing says backfills go."""
    backfill_history.apply_async(args=(symbol,), **route_for(WorkKind.BACKFILL).as_options())


# --- housekeeping -----------------------------------------------------------------------------------
@app.task(base=ReliableTask, bind=True, name="maintenance.cleanup")
def cleanup(self: ReliableTask) -> dict[str, object]:
    """Delete task results, bars, dispatch runs and closed dead letters past their retention."""
    return run_once_per_tick(self.request, name=self.name, work=maintenance.cleanup)


@app.task(base=ReliableTask, bind=True, name="maintenance.heartbeat")
def heartbeat(self: ReliableTask) -> dict[str, object]:
    """Record that beat and a worker are alive, close overdue runs, report data freshness per asset class."""
    return run_once_per_tick(self.request, name=self.name, work=maintenance.heartbeat)
