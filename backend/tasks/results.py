"""The result backend: django-celery-results' table, except a database outage never fails a task.

Celery writes task states (STARTED, SUCCESS, FAILURE, RETRY) outside the task body. When that
write fails, Celery reports an internal error, acknowledges the message and the task is counted a
failure although its own work never failed (or never ran). A result row is bookkeeping: losing
one during an outage is logged, while the work's own outcome decides what happens to the message
(a failure still reaches ``task_failure`` and its dead letter, through the dead-letter fallback).
Celery's Django fixup closes the broken connection after the task, as after any task.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django_celery_results.backends.database import DatabaseBackend

logger = logging.getLogger(__name__)


class OutageTolerantDatabaseBackend(DatabaseBackend):
    """django-celery-results' DatabaseBackend whose state writes survive a database outage."""

    def store_result(self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs):
        """Store the state, or log and carry on when the database cannot take it now."""
        try:
            return super().store_result(task_id, result, state, traceback, request=request, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            logger.warning(
                "state %s of task %s not stored, database unavailable: %s", state, task_id, type(exc).__name__
            )
            return result
