"""Shared set-up for end-to-end benchmarks: Django on the configured database, a clean universe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """Configure Django from the environment (DATABASE_URL, REDIS_URL) and migrate."""
    sys.path.insert(0, str(REPO_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
    os.environ.setdefault("FINANCEHUB_VAR_DIR", str(REPO_DIR / "var" / "bench"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL:
        raise SystemExit("benchmarks run on Redis + PostgreSQL: set DATABASE_URL and REDIS_URL")
    call_command("migrate", verbosity=0)


def reset_universe(n_assets: int, asset_class: str = "stock") -> list[int]:
    """Replace every asset with ``n_assets`` synthetic active ones of ``asset_class``; returns their ids."""
    from django.db import connection

    from backend.market.models import Asset, AssetType

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE market_indicatorsnapshot, market_pricebar, market_quote, market_newsarticle_assets, "
            "market_asset, tasks_dispatchrun, tasks_dispatchbatch, django_celery_results_taskresult CASCADE"
        )
    kind, _ = AssetType.objects.get_or_create(code=asset_class, defaults={"name": asset_class.title()})
    # Signals would queue a backfill per asset: bulk_create sends none, which is what a benchmark wants.
    Asset.objects.bulk_create(
        Asset(symbol=f"B{i:05d}", name=f"Bench {i}", asset_type=kind, binance_symbol=f"B{i:05d}USDT")
        for i in range(n_assets)
    )
    return list(Asset.objects.order_by("pk").values_list("pk", flat=True))


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Poll until ``condition`` holds; returns the moment (monotonic) it did, or raises on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


class PeakRss:
    """Samples the resident set size of a process and its children in a thread; keeps each one's peak.

    Pool processes are keyed by their role ("main" for the worker's own process, "child-N" in order of
    first sight), so peaks of consecutive runs on one worker can be compared for growth.
    """

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, tuple[float, float]] = {}  # pid -> (CPU seconds at first sight, at last sight)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process and its children used while sampled."""
        return sum(last - first for first, last in self.cpu.values())

    def _sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        known: dict[int, psutil.Process] = {}
        while True:
            stopping = self._stop.is_set()  # one last sample after the stop, so CPU time is complete
            try:
                # Process objects are kept: psutil reads less for a process it already knows.
                processes = [root, *(known.setdefault(child.pid, child) for child in root.children())]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                self.peaks[process.pid] = max(rss, self.peaks.get(process.pid, 0))
                used = times.user + times.system
                self.cpu[process.pid] = (self.cpu.get(process.pid, (used, used))[0], used)
            if stopping:
                return
            self._stop.wait(self.interval)

    def megabytes(self) -> dict[str, float]:
        """Peak RSS in MiB per process: ``main`` first, then the pool processes by pid."""
        out = {"main": self.peaks.get(self.pid, 0) / 2**20}
        for pid in sorted(p for p in self.peaks if p != self.pid):
            out[f"pid {pid}"] = self.peaks[pid] / 2**20
        return out


class ServiceCpu:
    """CPU seconds that the rest of the machine's part in a run used: this benchmark process (its
    polling), PostgreSQL's processes, Redis' and any process named in ``roles`` (pid -> role, e.g. the
    fake provider server). Not the worker (PeakRss has it)."""

    NAMES = {"postgres": "postgres", "redis-server": "redis"}
    # Processes named by pid for every run from now on (the fake server a benchmark started).
    roles: dict[int, str] = {}

    def __enter__(self) -> ServiceCpu:
        self._before = self._snapshot()
        return self

    def __exit__(self, *_: object) -> None:
        after = self._snapshot()
        self.seconds = {role: 0.0 for role in ("bench", *self.NAMES.values(), *self.roles.values())}
        for pid, (role, used) in after.items():
            # A process started during the run (a new database connection) counts from zero.
            self.seconds[role] += used - self._before.get(pid, (role, 0.0))[1]

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        import psutil

        me = os.getpid()
        found: dict[int, tuple[str, float]] = {}
        for process in psutil.process_iter(["name"]):
            role = (
                "bench"
                if process.pid == me
                else self.roles.get(process.pid) or self.NAMES.get(process.info["name"] or "")
            )
            if role is None:
                continue
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            found[process.pid] = (role, times.user + times.system)
        return found


# --- A/B runs of a worker on two code trees -----------------------------------------------------


def profile_worker(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker and its pool processes until sent SIGINT."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200", "-o", path]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def worker_runs(
    tree: Path,
    env: dict[str, str],
    runs: int,
    run_once: Callable[[], float],
    *,
    profile: str | None = None,
    before_run: Callable[[], object] = lambda: None,
) -> tuple[list[float], list[dict]]:
    """Start a worker (2 processes) on the code of ``tree``, time ``runs`` calls of ``run_once``;
    (seconds, peak RSS per process + ``cpu`` seconds + other ``services``' CPU seconds) per run."""
    import tests.fixtures.worker as workers

    workers.REPO_DIR = tree  # the worker imports the code of the folder it starts in
    worker = workers.start_worker(env, concurrency=2)
    spy = profile_worker(worker.process.pid, profile) if profile else None
    timings, peaks = [], []
    try:
        for _ in range(runs):
            before_run()
            with PeakRss(worker.process.pid) as rss, ServiceCpu() as services:
                timings.append(run_once())
            peaks.append({**rss.megabytes(), "cpu": rss.cpu_seconds(), "services": services.seconds})
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        workers.stop_worker(worker)
    return timings, peaks


def alternate_trees(
    compare: Path | None, trials: int, measure: Callable[[Path], tuple[list[float], list[dict]]]
) -> tuple[dict[str, list[float]], dict[str, list[dict]]]:
    """``measure`` this tree and, with ``compare``, that one too, alternating ``trials`` times (the other
    tree first); (seconds, peaks) per tree name. Both sides see the same noise of a shared machine."""
    trees = {"this tree": REPO_DIR, **({f"{compare}": compare.resolve()} if compare else {})}
    timings: dict[str, list[float]] = {name: [] for name in trees}
    peaks: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(trials):
        for name, tree in reversed(trees.items()):
            seconds, rss = measure(tree)
            timings[name] += seconds
            peaks[name] += rss
            print(f"{name}: {', '.join(f'{t:.2f}' for t in seconds)} s", flush=True)
    return timings, peaks


def print_peaks(peaks: dict[str, list[dict]]) -> None:
    """Peak RSS per worker process and run, per tree (``cpu`` and ``services`` entries already taken out)."""
    print("peak RSS per worker process and run (MiB):")
    for name, runs in peaks.items():
        for number, peak in enumerate(runs, 1):
            print(f"{name} run {number}: " + ", ".join(f"{label} {mib:.0f}" for label, mib in peak.items()))
