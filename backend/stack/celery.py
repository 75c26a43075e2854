"""The Celery app as its processes run it: ``celery -A backend.stack worker|beat|flower`` loads this.

Core builds the bare app (``backend.core.celery``); this module wires the layers above into it: the
task modules every worker imports, the consumer bootsteps, and the hooks worker and beat processes
run at start-up (logging, metric files, calendars and provider clients built before the first task).
"""

import gc
import logging.config
import os

from celery.signals import beat_init, setup_logging, worker_init, worker_process_init

from backend.core.celery import app

__all__ = ["app"]

# Every task lives in one module outside the apps' own tasks.py discovery path.
# Extra task modules for a worker come from FINANCEHUB_EXTRA_TASK_MODULES (tests load their
# deliberately failing tasks this way). Assigned, not read: reading app.conf here would load settings.
app.conf.imports = (
    "backend.tasks.tasks",
    *filter(None, os.environ.get("FINANCEHUB_EXTRA_TASK_MODULES", "").split(",")),
)

# Each worker publishes the queues it consumes, for /health/ready (backend/tasks/liveness.py).
app.steps["consumer"].add("backend.tasks.liveness:LivenessStep")
# ...and checks the alert conditions, one worker at a time (backend/monitoring/alerts/).
app.steps["consumer"].add("backend.monitoring.alerts.watchdog:AlertWatchdog")
# A message its consumer cannot decode becomes a dead letter before it is acknowledged (the other
# discards arrive by signal): backend/deadletters/consumer.py.
app.steps["consumer"].add("backend.deadletters.consumer:DecodeErrorStep")


def _ours(sender: object) -> bool:
    """Whether a worker or beat signal comes from a process of this app: a worker another app starts in
    this process (a test app's worker thread) starts none of this stack's machinery."""
    return getattr(sender, "app", app) is app


@setup_logging.connect
def configure_logging(**_: object) -> None:
    """Apply Django's LOGGING to worker and beat instead of Celery's own handlers."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_init.connect
def enable_worker_metrics(sender: object = None, **_: object) -> None:
    """Worker main process, before the pool forks: metric files in the shared directory, dead ones removed."""
    if not _ours(sender):
        return
    from backend.tasks.telemetry import multiproc

    multiproc.enable()
    multiproc.remove_dead_files()


@worker_init.connect
def build_exchange_calendars(sender: object = None, **_: object) -> None:
    """Build the exchange calendars before the pool forks: every pool process inherits them instead of
    building its own inside its first quote dispatch. Then freeze what start-up built."""
    if not _ours(sender):
        return
    from backend.common.exchange_sessions import warm_up

    warm_up()
    gc.collect()  # before the fork: nothing left to collect among what is frozen next
    freeze_start_up_objects()


@worker_process_init.connect
def build_quote_sources(**_: object) -> None:
    """Each pool process builds its provider clients when it starts (after the fork, so no socket is
    shared) instead of inside its first quote fetch. Then freeze what start-up built."""
    from backend.tasks.sources import warm_up

    warm_up()
    freeze_start_up_objects()


def freeze_start_up_objects() -> None:
    """Keep what start-up built (modules, settings, calendars, clients: ~150,000 objects) out of the
    cyclic collector's full passes, which otherwise walk them again every few tasks.

    Measured in the benchmark's two pool processes (``bench_quotes --gc``): collection took 0.21 s of
    each 10,000-quote refresh before, 0.04 s after. After the fork a full pass would also touch, and
    so copy, every inherited page. Objects built later are collected as before.
    """
    gc.freeze()


@beat_init.connect
def enable_beat_metrics(sender: object = None, **_: object) -> None:
    """Beat counts the ticks it sends into the shared metric files too."""
    if not _ours(sender):
        return
    from backend.tasks.telemetry import multiproc

    multiproc.enable()
