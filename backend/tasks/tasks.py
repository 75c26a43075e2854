"""Every Celery task of the platform, in one module that reads like a table of contents.

Each task is a few lines that call plain functions elsewhere. Tasks take symbols and
plain JSON, never model instances or keys; the retry policy lives in the decorator.
"""

from __future__ import annotations

import logging

from django.conf import settings

from backend.core.celery import app
from backend.providers.errors import TransientProviderError

from .policy import ReliableTask
from .quotes import plan_quote_batches, refresh_quotes
from .routing import WorkKind, route_for

logger = logging.getLogger(__name__)

# Transient faults only: a permanent one (unknown symbol, bad key, malformed reply) fails fast.
RETRY_POLICY = {
    "autoretry_for": (TransientProviderError,),
    "retry_backoff": 2,
    "retry_backoff_max": settings.TASK_RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": settings.TASK_MAX_RETRIES,
}


@app.task(base=ReliableTask, name="quotes.dispatch")
def dispatch_quotes(asset_class: str) -> dict[str, int]:
    """Send one fetch per provider-sized batch of the active assets of ``asset_class``."""
    batches = plan_quote_batches(asset_class, settings.QUOTE_BATCH_SIZE)
    route = route_for(WorkKind.QUOTES, asset_class)
    for symbols in batches:
        fetch_quotes.apply_async(args=(asset_class, symbols), **route.as_options())
    logger.info("dispatched %d %s quote batches", len(batches), asset_class)
    return {"batches": len(batches), "assets": sum(map(len, batches))}


@app.task(base=ReliableTask, name="quotes.fetch", **RETRY_POLICY)
def fetch_quotes(asset_class: str, symbols: list[str]) -> dict[str, object]:
    """Fetch and upsert quotes (and the running daily bar) for one batch of one asset class."""
    return refresh_quotes(asset_class, symbols).as_dict()
