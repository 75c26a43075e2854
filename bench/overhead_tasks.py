"""The no-op task the overhead benchmark drains through a worker with the platform's real configuration.

Loaded through FINANCEHUB_EXTRA_TASK_MODULES. It is declared like the platform's high-volume batch
task ``indicators.compute`` (same base class, same task options) and sent with the options a
dispatcher sends batches with, so every per-task cost such a batch pays (result backend, events,
delivery counter, database connection handling) is paid here too.
"""

from __future__ import annotations

from backend.core.celery import app
from backend.tasks.policy import ReliableTask
from backend.tasks.tasks import batch_send_options, compute_indicators

BATCH_TASK_OPTIONS = {
    name: getattr(compute_indicators, name)
    for name in ("ignore_result", "store_errors_even_if_ignored", "acks_late", "reject_on_worker_lost")
}


@app.task(base=ReliableTask, name="bench.noop", **BATCH_TASK_OPTIONS)
def noop() -> None:
    """Do nothing: what remains is the platform's per-task cost."""


def send(queue: str) -> None:
    """Queue one no-op the way a dispatcher queues a batch."""
    noop.apply_async(queue=queue, **batch_send_options())
