"""A /metrics scrape and a /health/ready call with 10,000 active assets: how long do they take?

Runs on Redis + PostgreSQL in this process through Django's test client (middleware, view, the
bearer-token check and the full exposition included; no network). The universe: N active assets,
half crypto and half stocks, each with a quote of a random age (a tenth of them stale), 200 open
dead letters, a beat heartbeat, the schedules synced, and metric files from earlier worker runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/financehub_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python -m bench.bench_metrics_scrape --assets 10000
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import timedelta

from bench.fill import quote_every_asset, truncate
from bench.harness import setup_django


def build_universe(n_assets: int) -> None:
    """Replace every asset with ``n_assets`` active ones with quotes of random ages."""
    from django.utils import timezone

    from backend.deadletters.models import DeadLetter
    from backend.market.models import Asset, AssetType, Quote
    from backend.tasks.models import Heartbeat
    from backend.tasks.schedules import sync_schedules

    truncate(Quote, Asset, DeadLetter)
    sync_schedules()
    kinds = {
        code: AssetType.objects.get_or_create(code=code, defaults={"name": code})[0] for code in ("crypto", "stock")
    }
    Asset.objects.bulk_create(
        Asset(
            symbol=f"B{i:05d}",
            asset_type=kinds["crypto" if i % 2 else "stock"],
            exchange="CRYPTO" if i % 2 else "XNYS",
            binance_symbol=f"B{i:05d}USDT" if i % 2 else "",
        )
        for i in range(n_assets)
    )
    now = timezone.now()
    rng = random.Random(7)
    quote_every_asset(
        now, lambda: timedelta(seconds=rng.uniform(0, 3600) if rng.random() < 0.1 else rng.uniform(0, 200))
    )
    DeadLetter.objects.bulk_create(
        DeadLetter(
            task_id=f"bench-{i}",
            task_name="quotes.fetch" if i % 3 else "news.fetch",
            exception_class="backend.providers.errors.AllProvidersFailedError",
            first_failure_at=now,
            last_failure_at=now,
        )
        for i in range(200)
    )
    Heartbeat.objects.update_or_create(component="beat", defaults={"last_seen": now})


def timed(call, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` calls (after one warm-up call)."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return times


def summary(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    return f"{name}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.test import Client

    from backend.tasks.liveness import publish
    from backend.tasks.telemetry import multiproc

    multiproc.enable()
    build_universe(args.assets)
    publish("bench@host", settings.TASK_QUEUES)  # as a live worker would
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's Host
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}

    def scrape() -> None:
        response = client.get("/metrics", **auth)
        assert response.status_code == 200 and b"financehub_stale_assets" in response.content

    def ready() -> None:
        assert client.get("/health/ready").status_code in (200, 503)

    body = client.get("/metrics", **auth).content
    lines = len(body.splitlines())
    print(f"{args.assets} active assets, exposition {len(body) / 1024:.0f} KiB, {lines} lines")
    print(summary("/metrics", timed(scrape, args.runs)))
    print(summary("/health/ready", timed(ready, args.runs)))


if __name__ == "__main__":
    main()
