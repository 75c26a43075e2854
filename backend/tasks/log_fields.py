"""Every log line written while a task runs names the task: id, name, queue and the symbols it was given.

Bound in ``task_prerun`` and undone in ``task_postrun``; Celery logs a task's success, retry and
failure lines between the two, so those carry the fields too. Undone by token, not cleared, so an
eager task run inside another task (tests, no broker) gives the outer task its fields back.
See ``backend.common.logcontext``. ``symbols_in`` is also what a dead letter records as its symbols
(``backend.deadletters``), so a log search and a dead-letter filter find the same runs.
"""

from __future__ import annotations

import re
from contextvars import Token
from typing import Any

from celery import signals

from backend.common import logcontext

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")
_ASSET_CLASSES = {"stock", "crypto", "etf", "forex", "index"}


def symbols_in(args: Any, kwargs: Any) -> list[str]:
    """Upper-case symbol-like strings in the arguments (lists of symbols, a ``symbol`` keyword)."""
    found: dict[str, None] = {}  # ordered, and a batch's 500 symbols are looked up, not scanned

    def walk(value: Any, depth: int = 0) -> None:
        if depth > 3 or len(found) >= 200:
            return
        if isinstance(value, str):
            if value not in found and _SYMBOL.match(value) and value.lower() not in _ASSET_CLASSES:
                found[value] = None
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "symbol" in str(key).lower() or "asset" in str(key).lower():
                    walk(item, depth + 1)

    walk(args)
    walk(kwargs)
    return list(found)


# task id -> the token that undoes its fields (one entry per task running in this thread).
_tokens: dict[str, Token] = {}


def fields_of(task: Any, task_id: str | None, args: Any, kwargs: Any) -> dict[str, Any]:
    """The log fields of one task run: id, name, the queue it came from and the symbols in its arguments."""
    info = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    return {
        "task_id": task_id,
        "task_name": getattr(task, "name", None),
        "queue": info.get("routing_key") or info.get("queue"),
        "symbols": symbols_in(args or (), kwargs or {}) or None,
    }


@signals.task_prerun.connect(dispatch_uid="financehub.log_fields.bind")
def bind_task_fields(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    """Bind this task's fields (a task run inside another replaces all of the outer's while it runs)."""
    _tokens[task_id or ""] = logcontext.bind(**fields_of(task, task_id, args, kwargs))


@signals.task_postrun.connect(dispatch_uid="financehub.log_fields.clear")
def clear_task_fields(task_id: str | None = None, **_: Any) -> None:
    """The task is over: lines the process writes next are not its lines."""
    token = _tokens.pop(task_id or "", None)
    try:
        if token is not None:
            logcontext.reset(token)
            return
    except ValueError:
        pass  # bound in another context (should not happen): fall through and forget everything
    logcontext.clear()
