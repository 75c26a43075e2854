"""Operations on dead letters: the shared filter vocabulary, replay and discard, one or many.

The management command and the admin both call these, so a filter or an action means the same
thing in the shell and in the browser.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .capture import REPLAY_HEADER
from .secrets import REDACTED

logger = logging.getLogger(__name__)


class ReplayRefused(Exception):
    """This dead letter cannot be replayed (state, or redacted arguments)."""


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
    """The dead letters matching every given filter (the command's and admin's shared vocabulary)."""
    from ..models import DeadLetter

    qs = DeadLetter.objects.all() if queryset is None else queryset
    if task:
        qs = qs.filter(task_name=task)
    if exception:
        # Either the dotted name or the bare class name.
        qs = qs.filter(exception_class=exception) | qs.filter(exception_class__endswith="." + exception)
    if provider:
        qs = qs.filter(provider=provider)
    if symbol:
        qs = qs.filter(symbols__contains=f",{symbol.upper()},")
    if state:
        qs = qs.filter(state=state)
    if since:
        qs = qs.filter(last_failure_at__gte=since)
    if until:
        qs = qs.filter(last_failure_at__lt=until)
    return qs


def _contains_redaction(value: Any) -> bool:
    return REDACTED in json.dumps(value, default=str)


def replay(dead_letter: Any, *, actor: str) -> str:
    """Re-send the original task with its original arguments; returns the new task id.

    The row is locked, the task sent, then the row marked ``replayed`` with the new id, who and
    when — all in one transaction, so a send that fails leaves the row open.
    """
    from uuid import uuid4

    from backend.core.celery import app

    from ..models import DeadLetter

    with transaction.atomic():
        row = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if row.state != DeadLetter.State.OPEN:
            raise ReplayRefused(f"dead letter {row.pk} is {row.state}, not open")
        if _contains_redaction(row.args) or _contains_redaction(row.kwargs):
            raise ReplayRefused(f"dead letter {row.pk} has redacted arguments; replaying would send {REDACTED}")
        new_id = str(uuid4())
        options: dict[str, Any] = {"task_id": new_id, "headers": {REPLAY_HEADER: row.task_id}}
        if row.queue:
            options["queue"] = row.queue
        app.send_task(row.task_name, args=list(row.args), kwargs=dict(row.kwargs), **options)
        row.state = DeadLetter.State.REPLAYED
        row.replay_task_id = new_id
        row.replayed_by = actor[:150]
        row.replayed_at = timezone.now()
        row.save(update_fields=["state", "replay_task_id", "replayed_by", "replayed_at"])
    logger.info("dead letter %s (%s[%s]) replayed by %s as %s", row.pk, row.task_name, row.task_id, actor, new_id)
    return new_id


def discard(dead_letter: Any, *, actor: str) -> bool:
    """Mark an open dead letter discarded, recording who and when; False when it was not open."""
    from ..models import DeadLetter

    updated = DeadLetter.objects.filter(pk=dead_letter.pk, state=DeadLetter.State.OPEN).update(
        state=DeadLetter.State.DISCARDED, discarded_by=actor[:150], discarded_at=timezone.now()
    )
    if updated:
        logger.info(
            "dead letter %s (%s[%s]) discarded by %s", dead_letter.pk, dead_letter.task_name, dead_letter.task_id, actor
        )
    return bool(updated)


@dataclass
class BulkResult:
    """What a bulk replay or discard did."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def replay_many(
    dead_letters: Iterable[Any],
    *,
    actor: str,
    rate: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkResult:
    """Replay each dead letter, at most ``rate`` per second (``DEADLETTER_REPLAY_RATE``)."""
    rate = float(settings.DEADLETTER_REPLAY_RATE if rate is None else rate)
    interval = 1.0 / rate if rate > 0 else 0.0
    result = BulkResult()
    last_sent: float | None = None
    for row in dead_letters:
        if last_sent is not None:
            wait = interval - (time.monotonic() - last_sent)
            if wait > 0:
                sleep(wait)
        try:
            replay(row, actor=actor)
            result.done.append(row.pk)
            last_sent = time.monotonic()
        except ReplayRefused as exc:
            result.refused[row.pk] = str(exc)
    return result


def discard_many(dead_letters: Iterable[Any], *, actor: str) -> BulkResult:
    """Discard each open dead letter."""
    result = BulkResult()
    for row in dead_letters:
        if discard(row, actor=actor):
            result.done.append(row.pk)
        else:
            result.refused[row.pk] = f"dead letter {row.pk} is {row.state}, not open"
    return result
