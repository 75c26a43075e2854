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
import time
from collections import Counter

from bench.harness import reset_universe, setup_django, wait_until

PROVIDERS = ("YAHOO", "BINANCE", "COINGECKO", "ALPHA_VANTAGE", "COINMARKETCAP", "NEWSAPI")


def run_once(expected: int) -> float:
    """Dispatch both classes as beat would; seconds until every asset has a quote fetched since."""
    from django.utils import timezone

    from backend.market.models import Quote
    from backend.tasks.tasks import dispatch_quotes

    since = timezone.now()
    started = time.monotonic()
    for asset_class in ("crypto", "stock"):
        dispatch_quotes.apply_async(args=(asset_class,), queue="high")
    done = wait_until(lambda: Quote.objects.filter(fetched_at__gte=since).count() >= expected, timeout=600)
    return done - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="QUOTE_BATCH_SIZE: symbols per fetch task")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    setup_django()
    from backend.fake_provider import FakeProviderServer
    from backend.market.models import Asset, AssetType, Quote
    from tests.fixtures.worker import purge_queues, start_worker, stop_worker

    reset_universe(args.assets // 2, "crypto")
    stocks, _ = AssetType.objects.get_or_create(code="stock", defaults={"name": "Stock"})
    Asset.objects.bulk_create(
        Asset(symbol=f"S{i:05d}", name=f"Stock {i}", asset_type=stocks) for i in range(args.assets - args.assets // 2)
    )
    purge_queues()
    timings = []
    with FakeProviderServer() as server:
        env = {
            "MARKET_DATA_MODE": "fake",
            "FAKE_PROVIDER_URL": server.url,
            "QUOTE_BATCH_SIZE": str(args.batch),
            **{f"{p}_RATE_LIMIT": "1000000/second" for p in PROVIDERS},
        }
        worker = start_worker(env, concurrency=2)
        try:
            for _ in range(args.runs):
                server.clear_requests()
                timings.append(run_once(args.assets))
                calls = Counter(entry["provider"] for entry in server.requests())
        finally:
            stop_worker(worker)
    sources = Counter(Quote.objects.values_list("source", flat=True))
    best = min(timings)
    print("| assets | batch | runs (s) | best (s) | assets/s (best) | requests per run | served by |")
    print("|---:|---:|---|---:|---:|---|---|")
    print(
        f"| {args.assets} | {args.batch} | {', '.join(f'{t:.2f}' for t in timings)} | {best:.2f} "
        f"| {args.assets / best:,.0f} | {dict(calls)} | {dict(sources)} |"
    )


if __name__ == "__main__":
    main()
