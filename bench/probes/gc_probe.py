"""Time Python's cyclic collector inside a worker: loaded as an extra task module, it registers no task.

Each process (the worker's main process and every pool process, whose totals restart at the fork)
writes its running total to ``$GC_PROBE_DIR/<pid>.json`` after every collection of generation 1 or
2, so a benchmark reads what the collector cost each process without stopping it. Standalone on
purpose (no Django, no project import): a worker of another tree loads this same file through
``PYTHONPATH`` and ``FINANCEHUB_EXTRA_TASK_MODULES=gc_probe``.
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

_totals = {"seconds": 0.0, "started": 0.0}


def _reset() -> None:
    _totals.update(seconds=0.0, started=0.0)


def _time_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _totals["started"] = time.perf_counter()
        return
    _totals["seconds"] += time.perf_counter() - _totals["started"]
    if info["generation"] >= 1:
        path = Path(os.environ["GC_PROBE_DIR"]) / f"{os.getpid()}.json"
        path.write_text(json.dumps({"seconds": _totals["seconds"]}))


if os.environ.get("GC_PROBE_DIR"):  # a worker started by the benchmark; the benchmark itself only reads
    gc.callbacks.append(_time_collection)
    os.register_at_fork(after_in_child=_reset)


def worker_env(directory: Path) -> dict[str, str]:
    """What a worker's environment needs to load this probe and write its totals to ``directory``."""
    return {
        "GC_PROBE_DIR": str(directory),
        "PYTHONPATH": str(Path(__file__).parent),
        "FINANCEHUB_EXTRA_TASK_MODULES": Path(__file__).stem,
    }


def collector_seconds(directory: Path, pids: list[int]) -> float:
    """What the collector cost the processes ``pids`` so far, from their files in ``directory``."""
    total = 0.0
    for pid in pids:
        path = directory / f"{pid}.json"
        if path.exists():
            total += json.loads(path.read_text())["seconds"]
    return total
