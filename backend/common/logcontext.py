"""Fields that belong to every log line of a unit of work: the task, its queue, its symbols, the provider.

A ``ContextVar`` holds them, so whatever logs while a task runs (our code, Celery's own lines,
the HTTP client) carries them without being handed them. The task side binds them when a task
starts and resets them when it ends; the provider chain binds ``provider`` around each call.
``LogContextFilter`` copies them onto each record, where a formatter may show them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any

# The fields a record may carry, in the order a formatter shows them.
FIELDS = ("task_id", "task_name", "queue", "symbols", "provider")
_context: ContextVar[dict[str, Any] | None] = ContextVar("financehub_log_context", default=None)


def current() -> dict[str, Any]:
    """The fields bound now (a copy)."""
    return dict(_context.get() or {})


def bind(**fields: Any) -> Token:
    """Add ``fields`` to the context (a None value removes that field); ``reset`` with the token undoes it."""
    merged = {**(_context.get() or {}), **fields}
    return _context.set({k: v for k, v in merged.items() if v is not None})


def reset(token: Token) -> None:
    """Put the context back as it was before the ``bind`` that returned ``token``."""
    _context.reset(token)


def clear() -> None:
    """Forget every field (a worker process between tasks)."""
    _context.set(None)


@contextlib.contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` for the duration of the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


class LogContextFilter(logging.Filter):
    """Copy the bound fields onto each record (a field the call site set with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
