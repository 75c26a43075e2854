"""What to tell an operator beside Replay: a recorded error that will recur, arguments that were cut.

A permanent provider error (unknown symbol, invalid key, malformed reply), arguments the task refused,
a task no worker had, or a message that killed its worker on every delivery does not go away by
itself. Admin, the dashboard and the command say so next to Replay, so an operator fixes the cause
first (or discards the row) instead of collecting a second identical dead letter.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from .bounds import json_size

logger = logging.getLogger(__name__)

# Lineage entry (dotted, as stored) -> what a replay meets again unless it was fixed.
_PERMANENT: tuple[tuple[str, str], ...] = (
    (
        "backend.providers.errors.PermanentProviderError",
        "the provider refused the request for good (unknown symbol, invalid key or malformed reply)",
    ),
    ("backend.deadletters.poison.PoisonMessageError", "its worker died on every delivery"),
    # The same error as rows recorded before dead letters became an app of their own name it.
    ("backend.tasks.deadletters.poison.PoisonMessageError", "its worker died on every delivery"),
    ("celery.exceptions.NotRegistered", "no worker that took the message had the task"),
    ("builtins.TypeError", "the task refused its arguments or failed on a programming error"),
    ("builtins.ValueError", "the task refused its input"),
)


def permanent_cause(row: Any) -> str:
    """Why ``row``'s recorded error will recur on a replay ('' when it may well not)."""
    lineage = {name for name in str(row.exception_lineage or "").split(",") if name}
    lineage.add(str(row.exception_class or ""))
    for name, cause in _PERMANENT:
        if name in lineage:
            return cause
    return ""


def replay_warning(row: Any) -> str:
    """The warning to show beside Replay of ``row`` ('' when its error is not known to be permanent, or
    when there is nothing to replay: a message that could not be decoded)."""
    if not row.arguments_known:
        return ""
    cause = permanent_cause(row)
    if not cause:
        return ""
    warning = (
        f"The recorded error is permanent ({row.exception_name}: {cause}): a replay will fail the same way "
        "unless its cause was fixed."
    )
    if str(row.exception_class).endswith(".NotRegistered"):
        warning += f" Replay once a worker that has {row.task_name!r} consumes queue {row.queue or 'its queue'!r}"
        warning += "." if _known_here(row.task_name) else "; this deployment's code does not have it either."
    return warning


def _known_here(task_name: str) -> bool:
    """Whether the code of this process (the same deploy as its workers) registers ``task_name``."""
    from backend.core.celery import app

    if task_name in app.tasks:
        return True
    # A worker of this deploy also imports the app's extra task modules (FINANCEHUB_EXTRA_TASK_MODULES);
    # imported here directly, not through Celery's loader, which would run Django's system checks too.
    for module in app.conf.imports:
        try:
            importlib.import_module(module)
        except ImportError:  # what this process cannot import, its workers cannot either: not known
            logger.info("task module %s does not import here", module)
    return task_name in app.tasks


def truncation_text(row: Any) -> str:
    """``kept 30,000 of 100,014 characters`` for a row whose arguments were cut, else ''."""
    if not row.arguments_truncated:
        return ""
    kept = json_size({"args": row.args, "kwargs": row.kwargs})
    return f"kept {kept:,} of {row.arguments_size:,} characters"
