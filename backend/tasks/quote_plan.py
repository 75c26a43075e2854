"""Quote batches planned from market conditions: read the state of every asset, then let routing decide.

The quote dispatcher groups assets by decision, sends each batch where its decision says (with the
reason as a task argument, so Flower shows it) and writes the reasons, those of the batches it did not
send included, on the dispatch run's note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from backend.market.conditions import AssetCondition, AssetRef, asset_refs, load_conditions
from backend.market.models import Asset

from .dispatching import dispatch_batches
from .freshness_targets import DEFAULT_FRESHNESS_SECONDS, freshness_targets
from .models import DispatchRun
from .routing import Decision, QuotePolicy, RoutedBatch, plan_routed_batches

logger = logging.getLogger(__name__)

# What the dispatcher calls per batch it sends: symbols, run id, batch index, the batch's decision.
SendBatch = Callable[[list[str], int, int, Decision], object]


def conditions_for(
    assets: Iterable[Asset | AssetRef],
    at: datetime | None = None,
    *,
    scope: QuerySet[Asset] | None = None,
    stored_by_at: bool = False,
) -> list[AssetCondition]:
    """Clock, volatility and staleness of ``assets`` (selected by ``scope``, if given) at ``at`` (now),
    against the schedules' freshness targets; ``stored_by_at`` ignores quotes fetched after ``at``."""
    targets = freshness_targets()
    return load_conditions(
        assets, at or timezone.now(), targets, DEFAULT_FRESHNESS_SECONDS, scope=scope, stored_by_at=stored_by_at
    )


def plan_quote_routes(
    asset_class: str, batch_size: int, *, at: datetime | None = None, run_now: bool = False
) -> list[RoutedBatch]:
    """The refreshable assets of ``asset_class`` grouped into batches by routing decision, most urgent first."""
    scope = Asset.objects.refreshable().of_class(asset_class)
    conditions = conditions_for(asset_refs(scope.order_by("symbol")), at, scope=scope)
    return plan_routed_batches(conditions, QuotePolicy.from_settings(), batch_size, run_now=run_now)


def dispatch_routed_quotes(
    asset_class: str, *, schedule: str, tick: datetime | None, task_id: str, run_now: bool, send: SendBatch
) -> dict[str, object]:
    """Claim the run, send one fetch per batch the decision says to fetch, note every reason on the run.

    ``run_now`` (anything beat did not send: an operator's run-now, a call from code) fetches what the
    calendar would leave alone, at low priority.
    """
    routed: list[RoutedBatch] = []

    def plan() -> list[tuple[str, ...]]:
        routed.extend(plan_quote_routes(asset_class, settings.QUOTE_BATCH_SIZE, run_now=run_now))
        return [batch.symbols for batch in routed if batch.decision.send]

    def send_one(symbols: list[object], run_id: int, index: int) -> object:
        sent = [batch for batch in routed if batch.decision.send]
        return send([str(s) for s in symbols], run_id, index, sent[index].decision)

    result = dispatch_batches(schedule, tick=tick, task_id=task_id, plan=plan, send=send_one)
    reasons = _distinct(batch.decision.reason for batch in routed)
    if "run" in result:
        _note_reasons(int(result["run"]), reasons)  # type: ignore[call-overload]
        for reason in reasons:
            logger.info("quote routing for %s: %s", schedule, reason)
    return {**result, "reasons": reasons}


def _distinct(reasons: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(reasons))


def _note_reasons(run_id: int, reasons: list[str]) -> None:
    """Append the routing reasons to the run's note (kept within the column), after any note it has."""
    run = DispatchRun.objects.filter(pk=run_id).only("note").first()
    if run is None:
        return
    text = "; ".join([run.note, *reasons] if run.note else reasons) or "no refreshable assets"
    limit = DispatchRun._meta.get_field("note").max_length or 300
    run.note = text if len(text) <= limit else text[: limit - 3] + "..."
    run.save(update_fields=["note"])
