"""Replay and discard over many dead letters: throttled, stopped by a broker refusal, summed up by outcome.

A bulk run's actions share one bulk id in the rows' history; its ``BulkResult`` counts the rows by
outcome, keeps the reason of each one not acted on and the replay warning of each one replayed on a
permanent error (``hints``), and a dry run returns the same summary without sending or recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from kombu.exceptions import KombuError

from .hints import replay_warning
from .history import new_bulk_id
from .operations import ReplayRefused, discard, replay, replay_refusal

# Outcomes of an action, as bulk summaries count them.
REPLAYED = "replayed"
DISCARDED = "discarded"
SEND_FAILED = "send failed"
NOT_SAVED = "not replayed: the database refused the change"
NOT_ATTEMPTED = "not attempted (stopped after a send failure)"


@dataclass
class BulkResult:
    """What a bulk replay or discard did (or, dry, would do): row ids by outcome, in first-seen order."""

    bulk: str = ""
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    warnings: dict[int, str] = field(default_factory=dict)  # replayed rows whose recorded error is permanent

    def add(self, outcome: str, pk: int, reason: str = "") -> None:
        self.outcomes.setdefault(outcome, []).append(pk)
        if reason:
            self.reasons[pk] = reason

    @property
    def done(self) -> list[int]:
        """Rows replayed or discarded."""
        return [*self.outcomes.get(REPLAYED, []), *self.outcomes.get(DISCARDED, [])]

    @property
    def refused(self) -> dict[int, str]:
        """Rows not acted on, with the reason."""
        skipped = {outcome: pks for outcome, pks in self.outcomes.items() if outcome not in (REPLAYED, DISCARDED)}
        return {pk: self.reasons.get(pk, outcome) for outcome, pks in skipped.items() for pk in pks}

    @property
    def total(self) -> int:
        return sum(len(pks) for pks in self.outcomes.values())

    def warn(self, row: Any) -> None:
        """Keep the replay warning of ``row``, if its recorded error says a replay will fail again."""
        warning = replay_warning(row)
        if warning:
            self.warnings[row.pk] = warning


def preview_replay(dead_letters: Iterable[Any], *, confirm_truncated: bool = False) -> BulkResult:
    """What ``replay_many`` would do, without sending or recording anything (``--dry-run``)."""
    result = BulkResult()
    for row in dead_letters:
        refusal = replay_refusal(row, confirm_truncated=confirm_truncated)
        result.add(refusal.outcome if refusal else REPLAYED, row.pk, str(refusal or ""))
        if refusal is None:
            result.warn(row)
    return result


def preview_discard(dead_letters: Iterable[Any]) -> BulkResult:
    """What ``discard_many`` would do, without changing or recording anything."""
    from .models import DeadLetter

    result = BulkResult()
    for row in dead_letters:
        result.add(DISCARDED if row.state == DeadLetter.State.OPEN else f"skipped: {row.state}", row.pk)
    return result


def replay_many(
    dead_letters: Iterable[Any],
    *,
    actor: str,
    rate: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    confirm_truncated: bool = False,
) -> BulkResult:
    """Replay each dead letter, at most ``rate`` per second (``DEADLETTER_REPLAY_RATE``).

    A send failure (the broker is away) or a commit the database refused stops the run: the rest are
    counted as not attempted.
    ``confirm_truncated`` is the operator's confirmation for rows whose arguments were cut.
    """
    rate = float(settings.DEADLETTER_REPLAY_RATE if rate is None else rate)
    interval = 1.0 / rate if rate > 0 else 0.0
    result = BulkResult(bulk=new_bulk_id(actor))
    last_sent: float | None = None
    stopped = False
    for row in dead_letters:
        if stopped:
            result.add(NOT_ATTEMPTED, row.pk)
            continue
        if last_sent is not None:
            wait = interval - (time.monotonic() - last_sent)
            if wait > 0:
                sleep(wait)
        try:
            replay(row, actor=actor, bulk=result.bulk, confirm_truncated=confirm_truncated)
            result.add(REPLAYED, row.pk)
            result.warn(row)
            last_sent = time.monotonic()
        except ReplayRefused as exc:
            result.add(exc.outcome, row.pk, str(exc))
        except (KombuError, OSError) as exc:
            result.add(SEND_FAILED, row.pk, f"{type(exc).__name__}: {exc}")
            stopped = True
        except DatabaseError as exc:  # nothing was sent: the replay's state never committed
            result.add(NOT_SAVED, row.pk, f"{type(exc).__name__}: {exc}")
            stopped = True
    return result


def discard_many(dead_letters: Iterable[Any], *, actor: str) -> BulkResult:
    """Discard each open dead letter."""
    result = BulkResult(bulk=new_bulk_id(actor))
    for row in dead_letters:
        if discard(row, actor=actor, bulk=result.bulk):
            result.add(DISCARDED, row.pk)
        else:
            row.refresh_from_db(fields=["state"])
            result.add(f"skipped: {row.state}", row.pk, f"dead letter {row.pk} is {row.state}, not open")
    return result
