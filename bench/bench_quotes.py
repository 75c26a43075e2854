"""Quotes end to end: N active assets, from the dispatch to the last upserted quote.

Runs on Redis + PostgreSQL with a real worker (concurrency 2) using the real httpx clients against the
fake provider server over loopback (MARKET_DATA_MODE=fake). Half the universe is crypto (Binance,
batches of 20 pairs), half stocks (Yahoo v7, batches of 50). Quotas are lifted for the run: the fake
server is on loopback and the point is the platform's own throughput.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/financehub_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python -m bench.bench_quotes --assets 10000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.harness import (
    REPO_DIR,
    ServiceCpu,
    alternate_trees,
    print_peaks,
    reset_universe,
    setup_django,
    wait_until,
    worker_runs,
)
from bench.probes import gc_probe

PROVIDERS = ("YAHOO", "BINANCE", "COINGECKO", "ALPHA_VANTAGE", "COINMARKETCAP", "NEWSAPI")


def seed_daily_bars(count: int) -> None:
    """``count`` daily bars, ending today, for every asset (one INSERT ... SELECT)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO market_pricebar (asset_id, interval, timestamp, open, high, low, close, volume, source) "
            "SELECT a.id, '1d', date_trunc('day', now()) - make_interval(days => d), 100, 110, 90, "
            "round((95 + random() * 10)::numeric, 2), 1000, 'bench' "
            "FROM market_asset a, generate_series(0, %s) AS d",
            [count - 1],
        )


def run_once(expected: int) -> float:
    """Dispatch both classes as beat would; seconds until every asset has a quote and both runs closed."""
    from django.utils import timezone

    from backend.market.models import Quote
    from backend.tasks.models import DispatchRun
    from backend.tasks.tasks import dispatch_quotes

    since = timezone.now()
    started = time.monotonic()
    for asset_class in ("crypto", "stock"):
        dispatch_quotes.apply_async(args=(asset_class,), queue="high")

    def finished() -> bool:
        # One small query per poll: the poller shares the machine's two cores with what it measures.
        runs = DispatchRun.objects.filter(started_at__gte=since, schedule__startswith="quotes.dispatch")
        statuses = list(runs.values_list("status", flat=True))
        return len(statuses) == 2 and all(status == "done" for status in statuses)

    done = wait_until(finished, timeout=600, interval=0.02)
    # A run is done once every asset is accounted, and a batch stores its quotes before it accounts them.
    fresh = Quote.objects.filter(fetched_at__gte=since).count()
    if fresh < expected:
        raise RuntimeError(f"both runs closed with {fresh} of {expected} quotes fresh")
    return done - started


class FakeServerProcess:
    """The fake provider server in a process of its own (``python -m backend.fake_provider``).

    In the benchmark's own process its request threads would share one interpreter lock with the
    polling loop; a provider is not slowed down by whoever measures its clients.
    """

    def __enter__(self) -> FakeServerProcess:
        import socket

        import httpx

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "backend.fake_provider", "--port", str(port), "--log-level", "WARNING"]
        self.process = subprocess.Popen(command, cwd=REPO_DIR)
        self._http = httpx.Client(base_url=self.url, timeout=10)

        def healthy() -> bool:
            try:
                return self._http.get("/_control/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=30, interval=0.1)
        ServiceCpu.roles[self.process.pid] = "fake server"
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()
        self.process.terminate()
        self.process.wait(10)

    def clear_requests(self) -> None:
        """Forget the request log."""
        self._http.delete("/_control/requests").raise_for_status()

    def requests(self) -> list[dict]:
        """Every provider request since the last clear."""
        return self._http.get("/_control/requests").json()["requests"]


def measure(tree: Path, env: dict[str, str], args: argparse.Namespace, server) -> tuple[list[float], list[dict]]:
    """Start a worker on the code of ``tree``, run ``--runs`` refreshes; (seconds, peak RSS) per run.

    With ``--gc``, each run's peaks also carry ``gc``: the collector's seconds in the pool processes
    per run, over the worker's runs (bench/probes/gc_probe.py, loaded by the worker)."""
    with tempfile.TemporaryDirectory(prefix="gc-probe-") as probe_dir:
        run_env = {**env, **gc_probe.worker_env(Path(probe_dir))} if args.gc else env
        timings, peaks = worker_runs(
            tree,
            run_env,
            args.runs,
            lambda: run_once(args.assets),
            profile=args.profile,
            before_run=server.clear_requests,
        )
        if args.gc:
            pool = sorted({int(label[4:]) for peak in peaks for label in peak if label.startswith("pid ")})
            per_run = gc_probe.collector_seconds(Path(probe_dir), pool) / len(timings)
            peaks = [{**peak, "gc": per_run} for peak in peaks]
    return timings, peaks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="QUOTE_BATCH_SIZE: symbols per fetch task")
    parser.add_argument("--runs", type=int, default=3, help="refreshes per worker start")
    parser.add_argument("--trials", type=int, default=1, help="worker starts per code tree (alternating trees)")
    parser.add_argument("--compare", type=Path, help="another checkout (e.g. the code before): alternate A/B with it")
    parser.add_argument(
        "--bars", type=int, default=0, help="daily bars per asset, as after a backfill (the dispatch reads them)"
    )
    parser.add_argument("--profile", help="write a py-spy profile (collapsed stacks) of the worker to this file")
    parser.add_argument(
        "--gc", action="store_true", help="time the cyclic collector inside the pool processes (bench/probes)"
    )
    args = parser.parse_args()
    setup_django()
    from backend.market.models import Asset, AssetType, Quote
    from tests.fixtures.worker import purge_queues

    reset_universe(args.assets // 2, "crypto")
    stocks, _ = AssetType.objects.get_or_create(code="stock", defaults={"name": "Stock"})
    Asset.objects.bulk_create(
        Asset(symbol=f"S{i:05d}", name=f"Stock {i}", asset_type=stocks) for i in range(args.assets - args.assets // 2)
    )
    if args.bars:
        seed_daily_bars(args.bars)
    purge_queues()
    with FakeServerProcess() as server:
        env = {
            "MARKET_DATA_MODE": "fake",
            "FAKE_PROVIDER_URL": server.url,
            "QUOTE_BATCH_SIZE": str(args.batch),
            **{f"{p}_RATE_LIMIT": "1000000/second" for p in PROVIDERS},
        }
        timings, peaks = alternate_trees(args.compare, args.trials, lambda tree: measure(tree, env, args, server))
        calls = Counter(entry["provider"] for entry in server.requests())
    sources = Counter(Quote.objects.values_list("source", flat=True))
    print(
        "| code | assets | batch | runs (s) | median (s) | assets/s (median) | worker CPU s per run (median) "
        "| assets per worker CPU s | fake server CPU s | PostgreSQL CPU s | Redis CPU s | bench (polling) CPU s "
        "| requests per run "
        "| served by |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for name, runs in timings.items():
        median = statistics.median(runs)
        cpu = statistics.median(peak.pop("cpu") for peak in peaks[name])
        services = [peak.pop("services") for peak in peaks[name]]
        roles = ("fake server", "postgres", "redis", "bench")
        other = " | ".join(f"{statistics.median(s[role] for s in services):.2f}" for role in roles)
        print(
            f"| {name} | {args.assets} | {args.batch} | {', '.join(f'{t:.2f}' for t in runs)} | {median:.2f} "
            f"| {args.assets / median:,.0f} | {cpu:.2f} | {args.assets / cpu:,.0f} | {other} | {dict(calls)} "
            f"| {dict(sources)} |"
        )
    for name in timings if args.gc else ():
        gc_seconds = statistics.median(peak.pop("gc") for peak in peaks[name])
        print(f"{name}: the cyclic collector took {gc_seconds:.3f} s a run in the pool processes (median)")
    print_peaks(peaks)


if __name__ == "__main__":
    main()
