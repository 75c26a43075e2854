"""A bare Celery app with one no-op task: the reference for the overhead benchmark (Celery's floor).

Celery's defaults only; the broker URL comes from BENCH_BROKER_URL.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bare", broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"))


@app.task(name="bare.noop")
def noop() -> None:
    """Do nothing."""
