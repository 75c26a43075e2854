"""The task platform's housekeeping, for dead letters: closed ones past their retention go (in
``maintenance.cleanup``, the one cleanup) and records waiting in the fallback move into the table (at
every heartbeat). ``apps.py`` adds both to ``backend.tasks.maintenance`` when Django starts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings

from .fallback import flush_fallback

logger = logging.getLogger(__name__)


def delete_closed(now: datetime) -> int:
    """Delete resolved and discarded dead letters older than ``RETENTION_DAYS["dead_letters"]``; how many."""
    from .models import DeadLetter

    cutoff = now - timedelta(days=settings.RETENTION_DAYS["dead_letters"])
    # Open and replayed (not yet confirmed) letters stay until an operator or a replay closes them.
    closed = DeadLetter.objects.filter(
        state__in=[DeadLetter.State.RESOLVED, DeadLetter.State.DISCARDED], last_failure_at__lt=cutoff
    )
    # delete() counts the cascaded history rows too; report the dead letters alone.
    return closed.delete()[1].get(DeadLetter._meta.label, 0)


def flush_parked() -> int:
    """Move the records waiting in the fallback into the table; how many moved."""
    flushed = flush_fallback()
    if flushed.flushed:
        logger.info("moved %d parked dead letters into the table", flushed.flushed)
    return flushed.flushed
