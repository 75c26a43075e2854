"""Indicators end to end: N active assets x B daily bars, from the beat tick to the last snapshot row.

Runs on Redis + PostgreSQL with a real worker (concurrency 2 on this 2-core machine) and measures, in
one run: the chunked fan-out (the design), one task per asset (the naive design: the same dispatch with
a chunk size of 1), and Celery's raw rate for no-op tasks on the same worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/financehub_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python -m bench.bench_indicators --assets 5000 --bars 250
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.harness import alternate_trees, print_peaks, reset_universe, setup_django, wait_until, worker_runs


def seed_bars(asset_ids: list[int], bars: int) -> None:
    """Write ``bars`` daily random-walk bars per asset with COPY (bulk_create would dominate the set-up)."""
    from django.db import connection

    rng = np.random.default_rng(7)
    start = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=bars)
    stamps = [(start + timedelta(days=d)).isoformat() for d in range(bars)]
    connection.ensure_connection()
    columns = "asset_id, interval, timestamp, open, high, low, close, volume, source"
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY market_pricebar ({columns}) FROM STDIN") as copy:
            for asset_id in asset_ids:
                closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, bars)))
                for stamp, close in zip(stamps, closes, strict=True):
                    c = f"{close:.4f}"
                    high, low = f"{close * 1.01:.4f}", f"{close * 0.99:.4f}"
                    copy.write_row((asset_id, "1d", stamp, c, high, low, c, 1000, "b"))


def snapshots_done(since: datetime, expected: int) -> bool:
    from backend.market.models import IndicatorSnapshot

    return IndicatorSnapshot.objects.filter(computed_at__gte=since).count() >= expected


def run_fan_out(expected: int, chunk_size: int) -> float:
    """Send the dispatch as beat would; seconds until every asset has a fresh snapshot."""
    from django.utils import timezone

    from backend.tasks.tasks import dispatch_indicators

    since = timezone.now()
    started = time.monotonic()
    dispatch_indicators.apply_async(kwargs={}, queue="medium", headers={"periodic_task_name": f"bench-{chunk_size}"})
    done = wait_until(lambda: snapshots_done(since, expected), timeout=1800, interval=0.1)
    return done - started


def noop_rate(n: int) -> float:
    """Tasks per second for Celery's built-in no-op-like ``celery.accumulate`` through the same worker."""
    from backend.core.celery import app

    started = time.monotonic()
    results = [app.send_task("celery.accumulate", args=(i,), queue="medium") for i in range(n)]
    for result in results:
        result.get(timeout=600)
    return n / (time.monotonic() - started)


def measure_chunked(tree: Path, expected: int, args: argparse.Namespace) -> tuple[list[float], list[dict]]:
    """A worker on the code of ``tree``; ``--runs`` hourly fan-outs; (seconds, peak RSS + CPU) per run."""
    env = {"INDICATOR_CHUNK_SIZE": "500"}
    return worker_runs(tree, env, args.runs, lambda: run_fan_out(expected, 500), profile=args.profile)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--bars", type=int, default=250)
    parser.add_argument("--noop", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1, help="chunked fan-outs per worker start")
    parser.add_argument("--trials", type=int, default=1, help="worker starts per code tree (alternating trees)")
    parser.add_argument("--compare", type=Path, help="another checkout (e.g. the code before): alternate A/B with it")
    parser.add_argument("--chunked-only", action="store_true", help="skip the naive and no-op measurements")
    parser.add_argument("--reuse-bars", action="store_true", help="keep the bars of an earlier run of the same size")
    parser.add_argument("--profile", help="write a py-spy profile (collapsed stacks) of the worker to this file")
    args = parser.parse_args()
    setup_django()
    from backend.market.models import Asset, PriceBar
    from tests.fixtures.worker import purge_queues, start_worker, stop_worker

    started = time.monotonic()
    ids = list(Asset.objects.order_by("pk").values_list("pk", flat=True))
    if not (args.reuse_bars and len(ids) == args.assets and PriceBar.objects.count() == args.assets * args.bars):
        ids = reset_universe(args.assets)
        seed_bars(ids, args.bars)
    seeding = time.monotonic() - started
    purge_queues()
    timings, peaks = alternate_trees(args.compare, args.trials, lambda tree: measure_chunked(tree, len(ids), args))
    print(f"bars ready ({len(ids)} assets x {args.bars}) in {seeding:.1f} s")
    print("| code | assets | runs (s) | median (s) | assets/s | worker CPU s per run (median) |")
    print("|---|---:|---|---:|---:|---:|")
    for name, runs in timings.items():
        median = statistics.median(runs)
        cpu = statistics.median(peak.pop("cpu") for peak in peaks[name])
        for peak in peaks[name]:
            peak.pop("services")
        print(
            f"| {name} | {len(ids)} | {', '.join(f'{t:.2f}' for t in runs)} | {median:.2f} "
            f"| {len(ids) / median:,.0f} | {cpu:.2f} |"
        )
    print_peaks(peaks)
    if args.chunked_only:
        return
    worker = start_worker({"INDICATOR_CHUNK_SIZE": "1"}, concurrency=2)
    try:
        naive = run_fan_out(len(ids), 1)
    finally:
        stop_worker(worker)
    worker = start_worker(concurrency=2)
    try:
        rate = noop_rate(args.noop)
    finally:
        stop_worker(worker)
    design = statistics.median(timings["this tree"])
    print(f"| one task per asset (naive) | {len(ids)} | {naive:.2f} | | {len(ids) / naive:,.0f} | |")
    print(f"| celery no-op tasks (`celery.accumulate`) | {args.noop} tasks | | | {rate:,.0f} tasks/s | |")
    print(f"chunked vs one task per asset: {naive / design:.1f}x faster")


if __name__ == "__main__":
    main()
