"""Quarantine: set aside symbols that every provider keeps reporting unknown, and re-admit them.

An unknown stock falls through to the scarce fallback provider on every refresh (288 calls a day
against a 25/day plan). After ``QUARANTINE_AFTER_UNKNOWN`` refreshes in a row in which every provider
of its chain said "unknown", the asset is flagged and quote fetches skip it. A stored quote ends the
streak; other outcomes (timeouts, bad records) neither count nor end it. An operator re-admits it from the admin (the
"clear quarantine" action, or by editing the asset).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from backend.common.logsafe import escape

from .models import Asset

logger = logging.getLogger(__name__)

REASON_CHARS = Asset._meta.get_field("quarantine_reason").max_length or 300
BY_CHARS = Asset._meta.get_field("quarantined_by").max_length or 64


def record_verdicts(
    asset_ids: Mapping[str, int],
    *,
    stored: Iterable[str] = (),
    unknown: Mapping[str, str] | None = None,
    by: str,
    streaks: Mapping[str, int] | None = None,
) -> list[str]:
    """Update the unknown streaks of one refreshed batch (``asset_ids``: symbol -> asset id); returns the
    symbols quarantined just now.

    ``stored``: symbols with a fresh quote (their streak ends); ``unknown``: symbol -> reason, every
    provider of the chain reported it unknown (its streak grows). Any other outcome (a transient
    failure, a bad record, a provider refusing the whole call) says nothing about whether the symbol
    exists and leaves its streak as it is. ``streaks`` (symbol -> streak, as the batch loaded them)
    limits the reset to assets that had one: a batch of known symbols then writes nothing. A streak
    another delivery of the same symbol raised after that load is ended by the next stored quote.
    """
    unknown = dict(unknown or {})
    had_streak = (lambda s: streaks.get(s, 1) > 0) if streaks is not None else (lambda s: True)
    reset = [asset_ids[s] for s in stored if s in asset_ids and s not in unknown and had_streak(s)]
    if reset:
        Asset.objects.filter(pk__in=reset, unknown_streak__gt=0).update(unknown_streak=0)
    ids = {asset_ids[s]: s for s in unknown if s in asset_ids}
    if not ids:
        return []
    Asset.objects.filter(pk__in=ids).update(unknown_streak=F("unknown_streak") + 1)
    threshold = settings.QUARANTINE_AFTER_UNKNOWN
    if threshold <= 0:  # quarantine turned off: streaks are still counted, for the admin to see
        return []
    due = Asset.objects.filter(pk__in=ids, quarantined_at__isnull=True, unknown_streak__gte=threshold)
    now = timezone.now()
    quarantined = []
    for pk, streak in due.values_list("pk", "unknown_streak"):
        symbol = ids[pk]
        reason = escape(unknown[symbol])[:REASON_CHARS]
        # The quarantined_at guard makes a concurrent batch's update a no-op instead of a second stamp.
        if Asset.objects.filter(pk=pk, quarantined_at__isnull=True).update(
            quarantined_at=now, quarantined_by=by[:BY_CHARS], quarantine_reason=reason
        ):
            quarantined.append(symbol)
            logger.warning("quarantined %s after %d unknown verdicts in a row: %s", symbol, streak, reason)
    return sorted(quarantined)


def quarantine(assets: QuerySet[Asset], *, by: str, reason: str) -> int:
    """Set assets aside by hand (an operator's decision); returns how many were newly quarantined."""
    return assets.filter(quarantined_at__isnull=True).update(
        quarantined_at=timezone.now(), quarantined_by=by[:BY_CHARS], quarantine_reason=escape(reason)[:REASON_CHARS]
    )


def clear_quarantine(assets: QuerySet[Asset]) -> int:
    """Re-admit assets: quote fetches serve them again and their streak starts over; returns how many."""
    return assets.filter(quarantined_at__isnull=False).update(
        quarantined_at=None, quarantined_by="", quarantine_reason="", unknown_streak=0
    )


def readmit(asset: Asset) -> None:
    """Clear the quarantine fields of an asset about to be saved (an edit re-admits it)."""
    asset.quarantined_at = None
    asset.quarantined_by = ""
    asset.quarantine_reason = ""
    asset.unknown_streak = 0
