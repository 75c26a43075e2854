"""Capture: Celery signal receivers that turn a task's final failure into a dead letter.

``task_failure`` writes the dead letter; ``task_internal_error`` (sent instead when Celery failed
outside the task body, e.g. storing the result while the database is down) writes it from the
cause found in the error's context chain. Both redact the exception in place first, because Celery
logs it, stores it and sends it in events right after. Receivers never raise: Celery would swallow
the error and the dead letter would be lost silently, so failures are logged loudly instead.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import traceback as traceback_module
from typing import Any

from celery import signals

from backend.tasks.secrets import scrub_einfo, scrub_result_row

from .fallback import record_failure
from .history import mark_replay_outcome
from .records import build_record, replay_header

logger = logging.getLogger(__name__)


def _traceback_text(einfo: Any, exc: BaseException | None) -> str:
    text = getattr(einfo, "traceback", "") or ""
    if not text and exc is not None and exc.__traceback__ is not None:
        text = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))
    return str(text)


def _capture(
    sender: Any,
    task_id: str,
    cause: BaseException,
    raised: BaseException,
    args: Any,
    kwargs: Any,
    einfo: Any,
    request: Any,
) -> str:
    """Record ``cause`` as the dead letter of ``task_id``, then redact what Celery emits next; where it went."""
    record = build_record(
        task_id=task_id,
        task_name=getattr(sender, "name", ""),
        exc=cause,
        args=args,
        kwargs=kwargs,
        traceback_text=_traceback_text(einfo, raised),
        request=request,
    )
    scrub_einfo(raised, einfo)
    return record_failure(record)


@signals.task_failure.connect(dispatch_uid="financehub.deadletters.task_failure")
def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    traceback: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    """Write the dead letter of a task that finally failed (never raises)."""
    try:
        if task_id is None or exception is None:
            return
        request = getattr(sender, "request", None)
        if getattr(request, "is_eager", False):
            return
        context = request if getattr(request, "id", None) == task_id else None
        where = _capture(sender, task_id, exception, exception, args, kwargs, einfo, context)
        if where == "database":
            with contextlib.suppress(Exception):
                scrub_result_row(task_id)
    except Exception:  # noqa: BLE001 - a bug here must not crash the worker; it is logged loudly
        logger.exception("dead letter handler failed for task %s", task_id)


@signals.task_internal_error.connect(dispatch_uid="financehub.deadletters.task_internal_error")
def on_task_internal_error(
    sender: Any = None,
    task_id: str | None = None,
    args: Any = None,
    kwargs: Any = None,
    request: Any = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    """Celery failed outside the task body (e.g. storing the result while the database is down).

    ``task_failure`` is then never sent for the task's own exception, so this records it: the
    original exception is found in the internal error's context chain.
    """
    try:
        if task_id is None or exception is None:
            return
        cause: BaseException = exception
        chain = exception
        seen: set[int] = set()
        while chain is not None and id(chain) not in seen:
            seen.add(id(chain))
            if chain.__traceback__ is not None and not _is_infrastructure_error(chain):
                cause = chain
                break
            chain = chain.__context__
        context = request if request is not None and not isinstance(request, dict) else None
        context = context or _DictRequest(request if isinstance(request, dict) else {})
        _capture(sender, task_id, cause, exception, args, kwargs, einfo, context)
    except Exception:  # noqa: BLE001 - a bug here must not crash the worker; it is logged loudly
        logger.exception("dead letter handler failed for task %s (internal error)", task_id)


class _DictRequest:
    """Attribute access over the raw request dict Celery passes to ``task_internal_error``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data.get(name)


_INFRASTRUCTURE_MODULES = ("django.db", "sqlite3", "psycopg", "psycopg2", "redis", "kombu", "amqp")


def _is_infrastructure_error(exc: BaseException) -> bool:
    """A database, broker or OS error: Celery's own bookkeeping failing, not the task's cause."""
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError) or module.startswith(_INFRASTRUCTURE_MODULES)


@signals.task_success.connect(dispatch_uid="financehub.deadletters.task_success")
def on_task_success(sender: Any = None, **_: Any) -> None:
    """A replay that succeeded marks the dead letter it came from ``replay succeeded``."""
    request = getattr(sender, "request", None)
    original = replay_header(request)
    if not original:
        return
    try:
        mark_replay_outcome(
            original,
            succeeded=True,
            actor=f"worker:{getattr(request, 'hostname', '') or socket.gethostname()}",
            detail=f"task {getattr(request, 'id', '')}",
        )
    except Exception:  # noqa: BLE001 - the row stays "replayed"; nothing is lost
        logger.warning("could not mark dead letter %s resolved", original, exc_info=True)
