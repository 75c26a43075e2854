"""The worker's consumer discards a message: it becomes a dead letter instead of a log line.

Celery tells about three of its four discards with documented signals, sent from the consumer in the
worker's main process right after it rejected the message:

* ``task_unknown`` — a task name this worker has not registered;
* ``task_rejected`` — content it refuses (a pickle body: ``ContentDisallowed``), an invalid task
  message (``InvalidTaskError``), or, with no exception, a message without a ``task`` header.

The fourth, a body that cannot be decoded, has no signal: the consumer logs it and acknowledges it in
``Consumer.on_decode_error``. ``DecodeErrorStep``, a consumer bootstep added in the Celery app's
composition root, wraps that one method of its consumer so the dead letter is written first and
Celery's own handling (log, acknowledge) follows unchanged.

Broker control messages (``celery.pidbox``) share the decode path; they are no work and are left
to Celery's log.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps, signals
from celery.exceptions import NotRegistered
from django.db import connections

from .fallback import record_failure
from .wire import REJECTED, UNDECODABLE, UNKNOWN, UNREGISTERED, NotATaskMessage, discarded_record

logger = logging.getLogger(__name__)

_CONTROL_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox", "celeryev")


def record_discarded(
    consumer: Any, message: Any, *, origin: str, exc: BaseException, task_name: str = "", task_id: str = ""
) -> str:
    """Keep ``message`` as a dead letter; where it went (``database``, ``fallback``...), '' if not kept.

    Never raises: the consumer's event loop runs this, and a bug here must cost a log line, not the worker.
    """
    try:
        if message is None or _is_control(message):
            return ""
        record = discarded_record(
            message,
            origin=origin,
            exc=exc,
            task_name=task_name,
            task_id=task_id,
            worker=str(getattr(consumer, "hostname", "") or ""),
        )
        _drop_broken_connections()
        where = record_failure(record)
        logger.warning(
            "discarded message kept as a dead letter (%s): task %r id %s queue %s -> %s",
            origin,
            record.task_name,
            record.task_id,
            record.queue,
            where,
        )
        return where
    except Exception:  # noqa: BLE001 - the consumer must go on; the message itself is in Celery's log line
        logger.exception("could not keep a discarded message (%s) as a dead letter", origin)
        return ""


def _drop_broken_connections() -> None:
    """The main process keeps its connection between rare writes: close it if it broke or aged since
    (a database restart), as Django does around each request. Never inside a transaction."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def _is_control(message: Any) -> bool:
    exchange = str((getattr(message, "delivery_info", None) or {}).get("exchange") or "")
    return exchange in _CONTROL_EXCHANGES


@signals.task_unknown.connect(dispatch_uid="financehub.deadletters.task_unknown")
def on_task_unknown(
    sender: Any = None, message: Any = None, exc: Any = None, name: str | None = None, id: str | None = None, **_: Any
) -> None:
    """A task name this worker does not have: replayable once a worker that has it consumes the queue."""
    record_discarded(
        sender, message, origin=UNREGISTERED, exc=NotRegistered(name), task_name=name or "", task_id=id or ""
    )


@signals.task_rejected.connect(dispatch_uid="financehub.deadletters.task_rejected")
def on_task_rejected(sender: Any = None, message: Any = None, exc: BaseException | None = None, **_: Any) -> None:
    """Content refused, an invalid task message, or (no exception) a message that names no task."""
    if exc is None:
        record_discarded(sender, message, origin=UNKNOWN, exc=NotATaskMessage("no task header and no task in the body"))
    else:
        record_discarded(sender, message, origin=REJECTED, exc=exc)


class DecodeErrorStep(bootsteps.Step):
    """Consumer bootstep: a body the consumer cannot decode becomes a dead letter before it is acknowledged."""

    name = "financehub.deadletters.decode_errors"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        celery_handler = parent.on_decode_error
        if getattr(celery_handler, "keeps_dead_letters", False):
            return  # already wrapped (the blueprint applied twice)

        def on_decode_error(message: Any, exc: BaseException) -> None:
            record_discarded(parent, message, origin=UNDECODABLE, exc=exc)
            celery_handler(message, exc)  # Celery's own: log at CRITICAL, acknowledge

        on_decode_error.keeps_dead_letters = True  # type: ignore[attr-defined]
        # An instance attribute: the task handler and the task consumer look the method up on the consumer.
        parent.on_decode_error = on_decode_error
