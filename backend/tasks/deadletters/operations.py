"""Operations on dead letters: the shared filter vocabulary, replay and discard, one or many.

The management command and the admin both call these, so a filter or an action means the same
thing in the shell and in the browser. Every action, refused or not, is kept in the dead letter's
history (``history``); a bulk run's actions share one bulk id and its result counts them by outcome.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from .history import new_bulk_id, record_action
from .records import REPLAY_HEADER
from .secrets import REDACTED

logger = logging.getLogger(__name__)

# Outcomes of an action, as bulk summaries count them.
REPLAYED = "replayed"
DISCARDED = "discarded"
SEND_FAILED = "send failed"
NOT_ATTEMPTED = "not attempted (stopped after a send failure)"


class ReplayRefused(Exception):
    """This dead letter cannot be replayed (state, or arguments not as the task got them)."""

    def __init__(self, message: str, *, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def filter_dead_letters(
    queryset: Any = None,
    *,
    task: str | None = None,
    exception: str | None = None,
    provider: str | None = None,
    symbol: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """The dead letters matching every given filter (the command's and admin's shared vocabulary).

    ``exception`` matches the class and its subclasses, by bare or dotted name; ``provider``
    matches any provider that failed for the task.
    """
    from ..models import DeadLetter

    qs = DeadLetter.objects.all() if queryset is None else queryset
    if task:
        qs = qs.filter(task_name=task)
    if exception:
        qs = qs.filter(exception_lineage__contains=lineage_needle(exception))
    if provider:
        qs = qs.filter(providers__contains=f",{provider.strip().lower()},")
    if symbol:
        qs = qs.filter(symbols__contains=f",{symbol.strip().upper()},")
    if state:
        qs = qs.filter(state=state)
    if since:
        qs = qs.filter(last_failure_at__gte=since)
    if until:
        qs = qs.filter(last_failure_at__lt=until)
    return qs


def lineage_needle(exception: str) -> str:
    """What an exception filter looks for in ``,a.B,c.D,``: the whole dotted name, or ``.Name,``
    for a bare name (every stored name is dotted, builtins included)."""
    name = exception.strip()
    return f",{name}," if "." in name else f".{name},"


def _contains_redaction(value: Any) -> bool:
    return REDACTED in json.dumps(value, default=str)


def replay_refusal(row: Any) -> ReplayRefused | None:
    """Why ``row`` cannot be replayed as it stands, or None when it can."""
    from ..models import DeadLetter

    if row.state != DeadLetter.State.OPEN:
        return ReplayRefused(
            f"dead letter {row.pk} is {row.get_state_display()}, not open", outcome=f"skipped: {row.state}"
        )
    if _contains_redaction(row.args) or _contains_redaction(row.kwargs):
        return ReplayRefused(
            f"dead letter {row.pk} has redacted arguments; replaying would send {REDACTED}",
            outcome="refused: redacted arguments",
        )
    if row.sanitised:
        return ReplayRefused(
            f"dead letter {row.pk} was stored with escaped characters; replaying would send altered arguments",
            outcome="refused: sanitised arguments",
        )
    return None


def replay(dead_letter: Any, *, actor: str, bulk: str = "") -> str:
    """Re-send the original task with its original arguments; returns the new task id.

    The row is locked, the task sent, then the row marked ``replayed`` with the new id, who and
    when — all in one transaction, so a send that fails leaves the row open. The attempt, sent,
    refused or failed, goes into the row's history.
    """
    from backend.core.celery import app

    from ..models import DeadLetter, DeadLetterAction

    kind = DeadLetterAction.Kind.REPLAY
    try:
        with transaction.atomic():
            row = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
            refusal = replay_refusal(row)
            if refusal is not None:
                raise refusal
            new_id = str(uuid.uuid4())
            options: dict[str, Any] = {"task_id": new_id, "headers": {REPLAY_HEADER: row.task_id}}
            if row.queue:
                options["queue"] = row.queue
            app.send_task(row.task_name, args=list(row.args), kwargs=dict(row.kwargs), **options)
            row.state = DeadLetter.State.REPLAYED
            row.replay_task_id = new_id
            row.replayed_by = actor[:150]
            row.replayed_at = timezone.now()
            row.save(update_fields=["state", "replay_task_id", "replayed_by", "replayed_at"])
            record_action(row, kind=kind, result=DeadLetterAction.Result.SENT, actor=actor, detail=new_id, bulk=bulk)
    except ReplayRefused as exc:
        record_action(
            dead_letter, kind=kind, result=DeadLetterAction.Result.REFUSED, actor=actor, detail=str(exc), bulk=bulk
        )
        raise
    except (KombuError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        record_action(
            dead_letter, kind=kind, result=DeadLetterAction.Result.SEND_FAILED, actor=actor, detail=detail, bulk=bulk
        )
        raise
    logger.info("dead letter %s (%s[%s]) replayed by %s as %s", row.pk, row.task_name, row.task_id, actor, new_id)
    return new_id


def discard(dead_letter: Any, *, actor: str, bulk: str = "") -> bool:
    """Mark an open dead letter discarded, recording who and when; False when it was not open."""
    from ..models import DeadLetter, DeadLetterAction

    kind = DeadLetterAction.Kind.DISCARD
    with transaction.atomic():
        updated = DeadLetter.objects.filter(pk=dead_letter.pk, state=DeadLetter.State.OPEN).update(
            state=DeadLetter.State.DISCARDED, discarded_by=actor[:150], discarded_at=timezone.now()
        )
        if updated:
            record_action(dead_letter, kind=kind, result=DeadLetterAction.Result.DISCARDED, actor=actor, bulk=bulk)
        else:
            state = DeadLetter.objects.filter(pk=dead_letter.pk).values_list("state", flat=True).first()
            detail = f"dead letter {dead_letter.pk} is {state}, not open"
            record_action(
                dead_letter, kind=kind, result=DeadLetterAction.Result.REFUSED, actor=actor, detail=detail, bulk=bulk
            )
    if updated:
        logger.info(
            "dead letter %s (%s[%s]) discarded by %s", dead_letter.pk, dead_letter.task_name, dead_letter.task_id, actor
        )
    return bool(updated)


@dataclass
class BulkResult:
    """What a bulk replay or discard did (or, dry, would do): row ids by outcome, in first-seen order."""

    bulk: str = ""
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)

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


def preview_replay(dead_letters: Iterable[Any]) -> BulkResult:
    """What ``replay_many`` would do, without sending or recording anything (``--dry-run``)."""
    result = BulkResult()
    for row in dead_letters:
        refusal = replay_refusal(row)
        result.add(refusal.outcome if refusal else REPLAYED, row.pk, str(refusal or ""))
    return result


def preview_discard(dead_letters: Iterable[Any]) -> BulkResult:
    """What ``discard_many`` would do, without changing or recording anything."""
    from ..models import DeadLetter

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
) -> BulkResult:
    """Replay each dead letter, at most ``rate`` per second (``DEADLETTER_REPLAY_RATE``).

    A send failure (the broker is away) stops the run: the rest are counted as not attempted.
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
            replay(row, actor=actor, bulk=result.bulk)
            result.add(REPLAYED, row.pk)
            last_sent = time.monotonic()
        except ReplayRefused as exc:
            result.add(exc.outcome, row.pk, str(exc))
        except (KombuError, OSError) as exc:
            result.add(SEND_FAILED, row.pk, f"{type(exc).__name__}: {exc}")
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
