"""The one place that decides which queue, and at what priority, a batch of work goes to.

Dispatchers call ``route_for`` for every batch they send; no task names its own queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WorkKind(StrEnum):
    """What a batch does; each kind has its own urgency."""

    QUOTES = "quotes"
    NEWS = "news"
    INDICATORS = "indicators"
    BACKFILL = "backfill"
    MAINTENANCE = "maintenance"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Route:
    """Where a message goes: a declared queue and a priority (0 is the most urgent)."""

    queue: str
    priority: int

    def as_options(self) -> dict[str, object]:
        """Options for ``apply_async``."""
        return {"queue": self.queue, "priority": self.priority}


# Crypto trades around the clock and moves fastest, so its quotes lead; indicators and
# news can wait minutes; backfill and housekeeping fill idle time.
_BASE_ROUTES = {
    (WorkKind.QUOTES, "crypto"): Route("high", 0),
    (WorkKind.QUOTES, "stock"): Route("high", 3),
    WorkKind.HEARTBEAT: Route("high", 0),
    WorkKind.NEWS: Route("medium", 5),
    WorkKind.INDICATORS: Route("medium", 6),
    WorkKind.BACKFILL: Route("low", 8),
    WorkKind.MAINTENANCE: Route("low", 9),
}


def route_for(kind: WorkKind, asset_class: str | None = None) -> Route:
    """Queue and priority for a batch of ``kind`` work on ``asset_class`` assets."""
    route = _BASE_ROUTES.get((kind, asset_class)) if asset_class else None
    if route is None:
        route = _BASE_ROUTES.get(kind)
    if route is None:
        route = Route("medium", 5) if kind is WorkKind.QUOTES else Route("low", 9)
    return route
