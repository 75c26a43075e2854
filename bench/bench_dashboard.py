"""The operator dashboard on a big platform: how long one page of `/` takes to render.

10,000 active assets (half crypto, half stocks, 2 % stale), six hours of task results (15,000 rows),
300 dead letters (50 open) and a run every 10 minutes per class, on PostgreSQL. The page is rendered
in-process through Django's test client as a logged-in staff user, so the figure is the server's
work: every query, the per-asset freshness, the workers' published liveness, the broker's queue
depths and oldest waits, four SVG charts and the template.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/financehub_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python -m bench.bench_dashboard --assets 10000
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import timedelta

from bench.fill import quote_every_asset, truncate
from bench.harness import setup_django


def populate(assets: int, results: int) -> None:
    """Quotes for every asset (2 % stale), six hours of task results, dead letters and runs."""
    from django.db import connection
    from django.db.models import F
    from django.utils import timezone
    from django_celery_results.models import TaskResult

    from backend.deadletters.models import DeadLetter
    from backend.market.models import Asset, AssetType
    from backend.tasks.models import DispatchRun

    truncate(Asset, TaskResult, DeadLetter, DispatchRun)
    for code, prefix, count in (("crypto", "B", assets // 2), ("stock", "S", assets - assets // 2)):
        kind, _ = AssetType.objects.get_or_create(code=code, defaults={"name": code.title()})
        # bulk_create sends no signal: no backfill is queued for the synthetic assets.
        Asset.objects.bulk_create(
            Asset(symbol=f"{prefix}{i:05d}", name=f"Bench {i}", asset_type=kind) for i in range(count)
        )
    now = timezone.now()
    rng = random.Random(7)
    quote_every_asset(now, lambda: timedelta(hours=5 if rng.random() < 0.02 else 0, seconds=rng.randint(0, 90)))
    TaskResult.objects.bulk_create(
        TaskResult(
            task_id=str(uuid.uuid4()),
            task_name=rng.choice(["quotes.fetch", "quotes.fetch", "indicators.compute", "maintenance.heartbeat"]),
            status=rng.choices(["SUCCESS", "FAILURE", "RETRY"], [96, 2, 2])[0],
            date_done=now - timedelta(seconds=rng.randint(0, 6 * 3600)),
        )
        for _ in range(results)
    )
    # date_done and started_at are set on save: spread them over the window afterwards, in SQL.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TaskResult._meta.db_table} SET date_done = now() - random() * interval '6 hours'")
    DeadLetter.objects.bulk_create(
        DeadLetter(
            task_id=str(uuid.uuid4()),
            task_name="quotes.fetch",
            args=["crypto", ["B00001"]],
            symbols=",B00001,",
            exception_class="backend.providers.errors.AllProvidersFailedError",
            first_failure_at=(when := now - timedelta(seconds=rng.randint(0, 6 * 3600))),
            last_failure_at=when,
            state="open" if i < 50 else "resolved",
        )
        for i in range(300)
    )
    DispatchRun.objects.bulk_create(
        DispatchRun(
            schedule=f"quotes: {cls}",
            slot=now - timedelta(minutes=10 * i),
            status="done",
            planned=assets // 2,
            done=assets // 2 - 3,
            failed=3,
            tick_at=now - timedelta(minutes=10 * i, seconds=1),
        )
        for i in range(36)
        for cls in ("crypto", "stock")
    )
    DispatchRun.objects.update(started_at=F("slot"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--results", type=int, default=15_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host and template hooks
    populate(args.assets, args.results)
    user, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)

    timings = []
    for _ in range(args.runs + 1):
        started = time.perf_counter()
        response = client.get("/", HTTP_HOST="localhost")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200 and b'class="bar"' in response.content
    timings = timings[1:]  # the first render warms caches and imports
    print(f"assets={args.assets} task_results={args.results} page_bytes={len(response.content)}")
    print(f"page render: median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
