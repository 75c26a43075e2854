"""prometheus-client's multiprocess mode for prefork workers, beat and gunicorn.

Each process writes its metric values to memory-mapped files named after it in one directory
(setting ``PROMETHEUS_MULTIPROC_DIR``, from ``FINANCEHUB_METRICS_DIR``, ``var/prometheus`` by default;
``enable`` exports it as prometheus-client's environment variable); /metrics merges them. Files are named
``<kind>_<host>-<pid>.db`` rather than by pid alone, so containers sharing the directory never
collide. A worker's main process removes, at start and on every liveness tick, the files of
processes of its host that no longer run: counters of a dead process are dropped (Prometheus reads
the drop as a counter reset), and its "running now" gauge stops counting at once.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from prometheus_client import multiprocess, values

logger = logging.getLogger(__name__)

_HOST = socket.gethostname().replace("_", "-")


def process_identifier() -> str:
    """This process's name in metric file names: ``<host>-<pid>``."""
    return f"{_HOST}-{os.getpid()}"


def metrics_dir() -> Path:
    """The shared directory of metric files (settings read at use time)."""
    from django.conf import settings

    return Path(settings.PROMETHEUS_MULTIPROC_DIR)


def enable() -> Path:
    """Switch this process (and the children it forks later) to multiprocess metric values.

    Called at process start (worker, beat, web) before any metric value exists: every metric of
    ``instruments`` is labelled, so its values are created on first use, after this.
    """
    path = metrics_dir()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)
    return path


def enabled() -> bool:
    """Whether this process writes its metrics to the shared directory."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ and values.ValueClass is not values.MutexValue


def mark_dead(identifier: str | None = None) -> None:
    """Drop the live gauges of a process that ended (this one by default)."""
    if enabled():
        multiprocess.mark_process_dead(identifier or process_identifier(), os.environ["PROMETHEUS_MULTIPROC_DIR"])


def remove_dead_files(*, live_gauges_only: bool = False) -> int:
    """Delete the metric files of this host's processes that no longer run; returns how many went.

    At worker start every such file goes. On a liveness tick only "live" gauges go (a pool process
    killed without its exit signal): dropping a dead process's counters mid-run would make the
    merged counters fall, which Prometheus would read as a reset and a burst.
    """
    if not enabled():
        return 0
    removed = 0
    pattern = f"gauge_live*_{_HOST}-*.db" if live_gauges_only else f"*_{_HOST}-*.db"
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob(pattern):
        pid = path.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass  # another process of this host removed it first
    if removed:
        logger.info("removed %d metric files of ended processes", removed)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
