"""Operations on dead letters: the shared filter vocabulary, replay, discard and refusals.

The management command, the admin and the dashboard all call these, so a filter or an action means
the same thing in the shell and in the browser. Every action, refused or not, is kept in the dead
letter's history (``history``); ``bulk`` runs them over many rows.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from backend.tasks.secrets import REDACTED

from .history import new_bulk_id, record_action
from .records import REPLAY_HEADER

logger = logging.getLogger(__name__)


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
    origin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """The dead letters matching every given filter (the command's and admin's shared vocabulary).

    ``exception`` matches the class and its subclasses, by bare or dotted name; ``provider``
    matches any provider that failed for the task.
    """
    from .models import DeadLetter

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
    if origin:
        qs = qs.filter(origin=origin)
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


def replay_refusal(row: Any, *, confirm_truncated: bool = False) -> ReplayRefused | None:
    """Why ``row`` cannot be replayed as it stands, or None when it can.

    A row whose arguments were cut replays only with ``confirm_truncated`` (an operator confirmed that
    the cut arguments are what should be sent).
    """
    from .models import DeadLetter

    if row.state != DeadLetter.State.OPEN:
        return ReplayRefused(
            f"dead letter {row.pk} is {row.get_state_display()}, not open", outcome=f"skipped: {row.state}"
        )
    if not row.arguments_known or not row.task_name:
        return ReplayRefused(
            f"dead letter {row.pk} ({row.get_origin_display()}): the message could not be decoded into a task "
            "and its arguments, so there is nothing to re-send; inspect it, then discard it",
            outcome="refused: not decodable",
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
    if row.arguments_truncated and not confirm_truncated:
        return ReplayRefused(
            f"dead letter {row.pk} kept only part of its arguments ({row.arguments_size:,} characters, cut to "
            f"{settings.DEADLETTER_KEEP_CHARS:,}); a replay sends the cut arguments, so it needs your "
            "confirmation (admin: the confirmation step; shell: --confirm-truncated)",
            outcome="refused: truncated arguments, not confirmed",
        )
    return None


def replay(dead_letter: Any, *, actor: str, bulk: str = "", confirm_truncated: bool = False) -> str:
    """Re-send the original task with its original arguments; returns the new task id.

    The row is locked, marked ``replayed`` with a task id chosen now, who and when, and the attempt is
    written to its history, all in one transaction; the task is sent only once that transaction has
    committed (``transaction.on_commit``; inside an outer transaction, once that one commits). A commit
    that fails sends nothing and leaves the row open, so the next Replay cannot run the task twice; a
    send the broker refuses after the commit puts the row back to open and its history entry says
    ``send failed``. A refusal (state, arguments, cut arguments not confirmed) is history too.
    """
    from .models import DeadLetter, DeadLetterAction

    kind = DeadLetterAction.Kind.REPLAY
    new_id = str(uuid.uuid4())
    try:
        with transaction.atomic():
            row = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
            refusal = replay_refusal(row, confirm_truncated=confirm_truncated)
            if refusal is not None:
                raise refusal
            row.state = DeadLetter.State.REPLAYED
            row.replay_task_id = new_id
            row.replayed_by = actor[:150]
            row.replayed_at = timezone.now()
            row.save(update_fields=["state", "replay_task_id", "replayed_by", "replayed_at"])
            detail = new_id + ("; truncated arguments, confirmed" if row.arguments_truncated else "")
            action = record_action(
                row, kind=kind, result=DeadLetterAction.Result.SENT, actor=actor, detail=detail, bulk=bulk
            )
            transaction.on_commit(partial(_send_replay, row, new_id, action.pk))
    except ReplayRefused as exc:
        record_action(
            dead_letter, kind=kind, result=DeadLetterAction.Result.REFUSED, actor=actor, detail=str(exc), bulk=bulk
        )
        raise
    logger.info("dead letter %s (%s[%s]) replayed by %s as %s", row.pk, row.task_name, row.task_id, actor, new_id)
    return new_id


def _send_replay(row: Any, new_id: str, action_pk: int) -> None:
    """Send the replay whose state has committed; when the broker refuses, undo that state and re-raise."""
    from backend.core.celery import app

    options: dict[str, Any] = {"task_id": new_id, "headers": {REPLAY_HEADER: row.task_id}}
    if row.queue:
        options["queue"] = row.queue
    try:
        app.send_task(row.task_name, args=list(row.args), kwargs=dict(row.kwargs), **options)
    except (KombuError, OSError) as exc:
        _undo_replay(row.pk, new_id, action_pk, f"{type(exc).__name__}: {exc}")
        raise


def _undo_replay(pk: int, new_id: str, action_pk: int, reason: str) -> None:
    """The replay ``new_id`` was never sent: the row is open again and its history entry says why."""
    from .models import DeadLetter, DeadLetterAction

    with transaction.atomic():
        DeadLetter.objects.filter(pk=pk, state=DeadLetter.State.REPLAYED, replay_task_id=new_id).update(
            state=DeadLetter.State.OPEN, replay_task_id="", replayed_by="", replayed_at=None
        )
        DeadLetterAction.objects.filter(pk=action_pk).update(
            result=DeadLetterAction.Result.SEND_FAILED, detail=f"{new_id} not sent: {reason}"
        )
    logger.warning("dead letter %s: replay %s not sent (%s); the row is open again", pk, new_id, reason)


def refuse(dead_letters: Iterable[Any], *, kind: str, actor: str, reason: str) -> int:
    """Record an attempt refused before it started (the user lacks the permission) in each row's
    history; how many rows. Several rows share one bulk id, as a bulk run's actions do."""
    from .models import DeadLetterAction

    rows = list(dead_letters)
    bulk = new_bulk_id(actor) if len(rows) > 1 else ""
    for row in rows:
        record_action(row, kind=kind, result=DeadLetterAction.Result.REFUSED, actor=actor, detail=reason, bulk=bulk)
    logger.warning("%s refused for %s on %d dead letter(s): %s", kind, actor, len(rows), reason)
    return len(rows)


def discard(dead_letter: Any, *, actor: str, bulk: str = "") -> bool:
    """Mark an open dead letter discarded, recording who and when; False when it was not open."""
    from .models import DeadLetter, DeadLetterAction

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
