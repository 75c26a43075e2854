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
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import REPO_DIR, PeakRss, reset_universe, setup_django, wait_until

PROVIDERS = ("YAHOO", "BINANCE", "COINGECKO", "ALPHA_VANTAGE", "COINMARKETCAP", "NEWSAPI")


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
        runs = DispatchRun.objects.filter(started_at__gte=since, schedule__startswith="quotes.dispatch")
        return (
            runs.count() == 2
            and not runs.exclude(status="done").exists()
            and Quote.objects.filter(fetched_at__gte=since).count() >= expected
        )

    done = wait_until(finished, timeout=600, interval=0.02)
    return done - started


def profile_worker(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker and its pool processes until sent SIGINT."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200", "-o", path]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(tree: Path, env: dict[str, str], args: argparse.Namespace, server) -> tuple[list[float], list[dict]]:
    """Start a worker on the code of ``tree``, run ``--runs`` refreshes; (seconds, peak RSS) per run."""
    import tests.fixtures.worker as workers

    workers.REPO_DIR = tree  # the worker imports the code of the folder it starts in
    worker = workers.start_worker(env, concurrency=2)
    spy = profile_worker(worker.process.pid, args.profile) if args.profile else None
    timings, peaks = [], []
    try:
        for _ in range(args.runs):
            server.clear_requests()
            with PeakRss(worker.process.pid) as rss:
                timings.append(run_once(args.assets))
            peaks.append({**rss.megabytes(), "cpu": rss.cpu_seconds()})
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        workers.stop_worker(worker)
    return timings, peaks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="QUOTE_BATCH_SIZE: symbols per fetch task")
    parser.add_argument("--runs", type=int, default=3, help="refreshes per worker start")
    parser.add_argument("--trials", type=int, default=1, help="worker starts per code tree (alternating trees)")
    parser.add_argument("--compare", type=Path, help="another checkout (e.g. the code before): alternate A/B with it")
    parser.add_argument("--profile", help="write a py-spy profile (collapsed stacks) of the worker to this file")
    args = parser.parse_args()
    setup_django()
    from backend.fake_provider import FakeProviderServer
    from backend.market.models import Asset, AssetType, Quote
    from tests.fixtures.worker import purge_queues

    reset_universe(args.assets // 2, "crypto")
    stocks, _ = AssetType.objects.get_or_create(code="stock", defaults={"name": "Stock"})
    Asset.objects.bulk_create(
        Asset(symbol=f"S{i:05d}", name=f"Stock {i}", asset_type=stocks) for i in range(args.assets - args.assets // 2)
    )
    purge_queues()
    trees = {"this tree": REPO_DIR, **({f"{args.compare}": args.compare.resolve()} if args.compare else {})}
    timings: dict[str, list[float]] = {name: [] for name in trees}
    peaks: dict[str, list[dict]] = {name: [] for name in trees}
    with FakeProviderServer() as server:
        env = {
            "MARKET_DATA_MODE": "fake",
            "FAKE_PROVIDER_URL": server.url,
            "QUOTE_BATCH_SIZE": str(args.batch),
            **{f"{p}_RATE_LIMIT": "1000000/second" for p in PROVIDERS},
        }
        for _ in range(args.trials):
            for name, tree in reversed(trees.items()):
                seconds, rss = measure(tree, env, args, server)
                timings[name] += seconds
                peaks[name] += rss
                print(f"{name}: {', '.join(f'{t:.2f}' for t in seconds)} s", flush=True)
        calls = Counter(entry["provider"] for entry in server.requests())
    sources = Counter(Quote.objects.values_list("source", flat=True))
    print(
        "| code | assets | batch | runs (s) | median (s) | assets/s (median) | worker CPU s per run (median) "
        "| assets per worker CPU s | requests per run | served by |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    for name, runs in timings.items():
        median = statistics.median(runs)
        cpu = statistics.median(peak.pop("cpu") for peak in peaks[name])
        print(
            f"| {name} | {args.assets} | {args.batch} | {', '.join(f'{t:.2f}' for t in runs)} | {median:.2f} "
            f"| {args.assets / median:,.0f} | {cpu:.2f} | {args.assets / cpu:,.0f} | {dict(calls)} | {dict(sources)} |"
        )
    print("peak RSS per worker process and run (MiB):")
    for name, runs in peaks.items():
        for number, peak in enumerate(runs, 1):
            print(f"{name} run {number}: " + ", ".join(f"{label} {mib:.0f}" for label, mib in peak.items()))


if __name__ == "__main__":
    main()
