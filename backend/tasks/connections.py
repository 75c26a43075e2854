"""Database connections in worker processes: kept across tasks, dropped when broken or too old.

Celery's Django fixup closes every connection before and after every task unless ``CELERY_DB_REUSE_MAX``
is set, so ``CONN_MAX_AGE`` did nothing in workers and each task paid a PostgreSQL connect. With reuse
on (settings), these receivers do what Django does around a web request instead: close a connection
that saw an error (an outage, a restart) or outlived ``CONN_MAX_AGE``, so the next task connects afresh.
``CONN_HEALTH_CHECKS`` makes a reused connection prove itself before a task's first query.
"""

from __future__ import annotations

from typing import Any

from celery import signals
from django.db import close_old_connections


@signals.task_prerun.connect(dispatch_uid="financehub.connections.prerun")
@signals.task_postrun.connect(dispatch_uid="financehub.connections.postrun")
def close_unusable_connections(sender: Any = None, **_: Any) -> None:
    """Close connections that are broken or past their age, around every task a worker runs."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's transaction (tests): leave its connection alone
    close_old_connections()
