"""Celery signal receivers that feed the task metrics (connected by the tasks app in every process).

Publishers (web, beat, workers) stamp each message with the time it is sent; the pool process that
runs it measures the queue wait from that stamp (or from the ETA of a delayed retry, so a retry's
countdown is not counted as waiting), counts the run's start and outcome, and times it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from celery import current_app, signals, states

from . import multiproc
from .instruments import (
    QUEUE_WAIT,
    TASK_RUNTIME,
    TASKS_FAILED,
    TASKS_RECEIVED,
    TASKS_REJECTED,
    TASKS_RETRIED,
    TASKS_RUNNING,
    TASKS_SENT,
    TASKS_STARTED,
    TASKS_SUCCEEDED,
)

# Header the publisher adds: the Unix time this message was sent (every send, retries included).
SENT_AT_HEADER = "financehub_sent_at"
UNKNOWN = "unknown"

_started: dict[str, tuple[float, str, str]] = {}


def queue_of(request: Any) -> str:
    """The queue a request came from (its routing key), or ``unknown``."""
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or info.get("exchange") or UNKNOWN


def queue_wait(request: Any, now: float) -> float | None:
    """Seconds between the later of publish time and ETA and ``now``; None without a publish stamp."""
    sent = getattr(request, SENT_AT_HEADER, None)
    if sent is None:
        sent = (getattr(request, "headers", None) or {}).get(SENT_AT_HEADER)
    try:
        ready = float(sent)
    except (TypeError, ValueError):
        return None
    eta = getattr(request, "eta", None)
    if eta:
        try:
            moment = eta if isinstance(eta, datetime) else datetime.fromisoformat(str(eta))
            ready = max(ready, moment.timestamp())
        except ValueError:
            pass  # an ETA we cannot read: measure from the publish time
    return max(0.0, now - ready)


@signals.before_task_publish.connect(dispatch_uid="financehub.telemetry.sent")
def count_sent(sender: str | None = None, headers: dict | None = None, routing_key: str = "", **_: Any) -> None:
    """Stamp the publish time into the message and count the send."""
    if headers is not None:
        headers[SENT_AT_HEADER] = time.time()
    TASKS_SENT.labels(sender or (headers or {}).get("task") or UNKNOWN, routing_key or UNKNOWN).inc()


@signals.task_received.connect(dispatch_uid="financehub.telemetry.received")
def count_received(request: Any = None, **_: Any) -> None:
    """A worker took the message off its queue (main process)."""
    TASKS_RECEIVED.labels(getattr(request, "name", None) or UNKNOWN, queue_of(request)).inc()


@signals.task_prerun.connect(dispatch_uid="financehub.telemetry.prerun")
def count_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """A pool process starts the run: count it, observe its queue wait, mark it running."""
    now = time.time()
    name, queue = task.name, queue_of(task.request)
    TASKS_STARTED.labels(name, queue).inc()
    TASKS_RUNNING.labels(name, queue).inc()
    wait = queue_wait(task.request, now)
    if wait is not None:
        QUEUE_WAIT.labels(name, queue).observe(wait)
    if task_id:
        _started[task_id] = (time.monotonic(), name, queue)


@signals.task_postrun.connect(dispatch_uid="financehub.telemetry.postrun")
def count_finished(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
    """The run ended: time it, unmark it running, count a success or a rejection."""
    started = _started.pop(task_id or "", None)
    if started is None:
        return
    began, name, queue = started
    TASKS_RUNNING.labels(name, queue).dec()
    TASK_RUNTIME.labels(name, queue).observe(time.monotonic() - began)
    if state == states.SUCCESS:
        TASKS_SUCCEEDED.labels(name, queue).inc()
    elif state in (states.REJECTED, states.IGNORED):
        TASKS_REJECTED.labels(name, queue, state.lower()).inc()


@signals.task_failure.connect(dispatch_uid="financehub.telemetry.failure")
def count_failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    """The run failed for good (no retry left, or not retried)."""
    request = getattr(sender, "request", None)
    TASKS_FAILED.labels(getattr(sender, "name", UNKNOWN), queue_of(request), type(exception).__name__).inc()


@signals.task_retry.connect(dispatch_uid="financehub.telemetry.retry")
def count_retried(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    """The run scheduled a retry; the reason is the exception class that caused it."""
    # Celery hands over its Retry exception; the cause is the exception it carries.
    cause = getattr(reason, "exc", None)
    cause = cause if isinstance(cause, BaseException) else reason
    why = type(cause).__name__ if isinstance(cause, BaseException) else UNKNOWN
    TASKS_RETRIED.labels(getattr(sender, "name", UNKNOWN), queue_of(request), why).inc()


@signals.task_rejected.connect(dispatch_uid="financehub.telemetry.rejected")
def count_rejected_message(message: Any = None, **_: Any) -> None:
    """The worker refused a message it could not decode or accept."""
    headers = getattr(message, "headers", None) or {}
    info = getattr(message, "delivery_info", None) or {}
    TASKS_REJECTED.labels(_known(headers.get("task")), info.get("routing_key") or UNKNOWN, "message").inc()


@signals.task_unknown.connect(dispatch_uid="financehub.telemetry.unknown")
def count_unknown(name: str | None = None, message: Any = None, **_: Any) -> None:
    """The worker received a task name it does not know."""
    info = getattr(message, "delivery_info", None) or {}
    TASKS_REJECTED.labels(_known(name), info.get("routing_key") or UNKNOWN, "unknown task").inc()


def _known(name: object) -> str:
    """A task name as a label only when it is registered: a forged message must not mint new series."""
    return name if isinstance(name, str) and name in current_app.tasks else "unregistered"


@signals.worker_process_shutdown.connect(dispatch_uid="financehub.telemetry.child_exit")
def forget_pool_process(**_: Any) -> None:
    """A pool process exits: its "running now" gauge must stop counting at once."""
    multiproc.mark_dead()
