"""A retry that asked nobody is no attempt: wait for the first provider that can be asked, retries kept.

Seen in the chaos suite (every crypto provider answering every second request with 429 + Retry-After,
a loaded machine): other batches' 429s kept re-arming the shared pauses, so one batch's retries found
every provider of its chain paused and sent no request at all. It reached a provider in 1-3 of its 6
attempts, spent its 5 retries without asking anyone and ended a dead letter, though no provider had
refused it that often.

So when a fetch attempt sent no request for any of its failed symbols because every provider that could
serve them was skipped (paused, or its circuit open: ``ProviderSkippedError``, a typed signal, never a
message read back), the task is sent again for the moment the first of them can be asked, plus a little
jitter so the batches waiting on one pause do not all ask at once, under the SAME retry number. Both are
shared state that sends nothing and names when it ends. A refused rate-limit slot is not counted here:
the limiter already waits for a slot inside the call and refuses only a quota spent for longer, which
is our own pacing rather than a provider that cannot be asked.

Bounded: at most ``TASK_MAX_DEFERRALS`` deferrals and ``TASK_DEFERRAL_MAX_SECONDS`` of deferred waiting
per task (counted in message headers, so they survive ordinary retries and hops); past either, the
attempt is an ordinary retry again, so every item still ends stored, rejected, or retried and then
dead-lettered. A deferral longer than ``TASK_RETRY_BACKOFF_MAX`` hops like any long retry
(``NOT_BEFORE_HEADER``): no broker message is held longer than the cap.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from celery.exceptions import Ignore
from django.conf import settings

from .policy import BROKER_ERRORS, NOT_BEFORE_HEADER, ReliableTask
from .telemetry.celery_signals import queue_of
from .telemetry.instruments import TASKS_DEFERRED

logger = logging.getLogger(__name__)

# How many deferrals the task has had, and the seconds of waiting they planned, in all its messages.
DEFERRALS_HEADER = "financehub_deferrals"
DEFERRED_SECONDS_HEADER = "financehub_deferred_seconds"
# Jitter is at most this share of the wait, and at most JITTER_MAX seconds: batches paused together
# spread over a moment instead of all asking the provider the instant its pause ends.
JITTER_SHARE = 0.25
JITTER_MAX = 1.0
# Wake a little after the pause's end, never on it: the board rounds what is left to milliseconds.
MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Spent:
    """What a task's deferrals have used so far: how many, and how many seconds they planned."""

    count: int = 0
    seconds: float = 0.0


def header(request: Any, name: str) -> Any:
    """A custom message header of ``request`` (Celery sets it as an attribute and keeps it in ``headers``)."""
    value = getattr(request, name, None)
    return value if value is not None else (getattr(request, "headers", None) or {}).get(name)


def spent_of(request: Any) -> Spent:
    """The deferral budget this delivery's message says is spent (nothing, on a first or garbled one)."""
    try:
        return Spent(int(header(request, DEFERRALS_HEADER) or 0), float(header(request, DEFERRED_SECONDS_HEADER) or 0))
    except (TypeError, ValueError):
        return Spent()


def deferral_wait(
    *,
    asked_nobody: bool,
    retry_after: float | None,
    spent: Spent,
    max_count: int,
    max_seconds: float,
    jitter: float = 0.0,
) -> float | None:
    """Seconds to defer an attempt for without spending a retry, or ``None``: an ordinary retry.

    Only an attempt that asked nobody and knows when a provider can be asked is deferred, and only while
    the budget holds: fewer than ``max_count`` deferrals, and this one's wait keeps the total within
    ``max_seconds``. ``jitter`` (a draw in [0, 1)) adds up to ``JITTER_SHARE`` of the wait, at most
    ``JITTER_MAX`` seconds.
    """
    if not asked_nobody or retry_after is None or spent.count >= max_count:
        return None
    wait = max(retry_after, 0.0) + MARGIN + jitter * min(JITTER_SHARE * max(retry_after, 0.0), JITTER_MAX)
    if spent.seconds + wait > max_seconds:
        return None
    return wait


def defer_if_nobody_asked(
    task: ReliableTask, *, asked_nobody: bool, retry_after: float | None, args: tuple, kwargs: dict, what: str
) -> None:
    """Send ``task`` again with ``args``/``kwargs`` under the same retry number and drop this delivery
    (``Ignore``), when the attempt asked nobody and the budget allows; return to retry ordinarily.

    ``what`` names the work in the log line (``20 crypto symbols``).
    """
    request = task.request
    if request.called_directly or request.is_eager:
        return
    spent = spent_of(request)
    max_count, max_seconds = settings.TASK_MAX_DEFERRALS, settings.TASK_DEFERRAL_MAX_SECONDS
    wait = deferral_wait(
        asked_nobody=asked_nobody,
        retry_after=retry_after,
        spent=spent,
        max_count=max_count,
        max_seconds=max_seconds,
        jitter=random.random(),  # noqa: S311 - jitter, not security
    )
    if wait is None:
        if asked_nobody and retry_after is not None:
            logger.info(
                "%s[%s] asked no provider again, its deferral budget is spent (%d deferrals, %.0f s): "
                "this attempt counts as a retry",
                task.name,
                request.id,
                spent.count,
                spent.seconds,
            )
        return
    cap = settings.TASK_RETRY_BACKOFF_MAX
    headers = {
        **(request.headers or {}),
        DEFERRALS_HEADER: spent.count + 1,
        DEFERRED_SECONDS_HEADER: round(spent.seconds + wait, 3),
    }
    if wait > cap:
        # Held at most the cap in one message; the deliveries before its time hop on (ReliableTask).
        headers[NOT_BEFORE_HEADER] = time.time() + wait
    try:
        task.signature_from_request(args=args, kwargs=kwargs, countdown=min(wait, cap), headers=headers).apply_async()
    except BROKER_ERRORS as exc:
        logger.warning("%s[%s] could not be deferred (%s); retrying instead", task.name, request.id, exc)
        return
    # Apart from the retries and the ignored deliveries it also shows as: how often work waited on pauses.
    TASKS_DEFERRED.labels(task.name, queue_of(request)).inc()
    logger.info(
        "%s[%s] asked no provider for %s (every one paused or its circuit open): deferred %.1f s, "
        "retries kept at %d (deferral %d of %d, %.0f of %.0f s)",
        task.name,
        request.id,
        what,
        wait,
        request.retries,
        spent.count + 1,
        max_count,
        spent.seconds + wait,
        max_seconds,
    )
    raise Ignore()
