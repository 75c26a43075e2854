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

from .fallback import record_failure
from .history import mark_replay_outcome
from .records import build_record, replay_header
from .secrets import (
    REDACTED,
    configured_secrets,
    redact_text,
    redacted_by_this_send,
    redacted_repr,
    repr_headers,
    scrub_einfo,
)

logger = logging.getLogger(__name__)


def _traceback_text(einfo: Any, exc: BaseException | None) -> str:
    text = getattr(einfo, "traceback", "") or ""
    if not text and exc is not None and exc.__traceback__ is not None:
        text = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))
    return str(text)


def _scrub_result_row(task_id: str) -> None:
    """Redact the django-celery-results row of ``task_id`` (Celery stored it before signalling)."""
    from django_celery_results.models import TaskResult

    row = TaskResult.objects.filter(task_id=task_id).first()
    if row is None:
        return
    secrets = configured_secrets()
    changed = False
    for name in ("result", "traceback", "task_args", "task_kwargs", "meta"):
        value = getattr(row, name)
        if isinstance(value, str) and value:
            clean = redact_text(value, secrets)
            if clean != value:
                setattr(row, name, clean)
                changed = True
    if changed:
        row.save()


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
                _scrub_result_row(task_id)
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


@signals.task_retry.connect(dispatch_uid="financehub.deadletters.task_retry")
def on_task_retry(request: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    """Redact the retry's exception before Celery logs it and sends the task-retried event."""
    try:
        scrub_einfo(reason if isinstance(reason, BaseException) else None, einfo)
        task_id = getattr(request, "id", None)
        if task_id:
            _scrub_result_row(task_id)
    except Exception:  # noqa: BLE001 - redaction is best effort here; logs pass the filter anyway
        logger.debug("could not scrub the retry of %s", getattr(request, "id", None), exc_info=True)


@signals.before_task_publish.connect(dispatch_uid="financehub.deadletters.before_task_publish")
def redact_published_reprs(headers: dict[str, Any] | None = None, body: Any = None, **_: Any) -> None:
    """Redact the argument reprs a message carries for logs, events and result rows.

    Workers show ``argsrepr``/``kwargsrepr`` in the task-received event (Flower), in
    django-celery-results' ``task_args``/``task_kwargs`` and in logs; the real arguments are untouched.
    Reprs the send redacted itself (``send_with_redacted_reprs``) are kept, not redacted again.
    """
    if headers is None or not isinstance(body, tuple | list) or len(body) < 2:
        return
    try:
        secrets = configured_secrets()
        for key, value in repr_headers(body[0], body[1]):
            if not redacted_by_this_send(headers.get(key)):
                headers[key] = redacted_repr(value, secrets)
    except Exception:  # noqa: BLE001 - never stop a publish over its log repr
        headers["argsrepr"] = headers["kwargsrepr"] = REDACTED


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
