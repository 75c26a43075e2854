"""Quote batches planned from market conditions: read the state of every asset, then let routing decide."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from backend.market.conditions import AssetCondition, load_conditions
from backend.market.models import Asset

from .maintenance import DEFAULT_FRESHNESS_SECONDS, freshness_targets
from .routing import QuotePolicy, RoutedBatch, plan_routed_batches


def conditions_for(assets: Iterable[Asset], at: datetime | None = None) -> list[AssetCondition]:
    """Clock, volatility and staleness of ``assets`` at ``at`` (now), against the schedules' freshness targets."""
    return load_conditions(assets, at or timezone.now(), freshness_targets(), DEFAULT_FRESHNESS_SECONDS)


def plan_quote_routes(
    asset_class: str, batch_size: int, *, at: datetime | None = None, run_now: bool = False
) -> list[RoutedBatch]:
    """The active assets of ``asset_class`` grouped into batches by routing decision, most urgent first."""
    assets = Asset.objects.active().of_class(asset_class).select_related("asset_type").order_by("symbol")
    return plan_routed_batches(conditions_for(assets, at), QuotePolicy.from_settings(), batch_size, run_now=run_now)
