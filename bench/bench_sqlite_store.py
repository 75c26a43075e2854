"""SQLite (make run's embedded database): one backfill's 250 bars upserted row by row in autocommit
(each row its own transaction) against the batch in one transaction, alternating, medians.

Run from the repo root: .venv/bin/python -m bench.bench_sqlite_store [pairs] [bars]
It uses a database file of its own under a temporary directory (migrated first).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    n_bars = int(sys.argv[2]) if len(sys.argv) > 2 else 250
    workdir = tempfile.mkdtemp(prefix="bench-sqlite-")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("FINANCEHUB_VAR_DIR", workdir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from backend.market import upserts
    from backend.market.models import Asset, AssetType
    from backend.market.store import BARS

    call_command("migrate", verbosity=0)
    stock, _ = AssetType.objects.get_or_create(code="stock", defaults={"name": "Stock"})
    asset = Asset.objects.create(symbol="BENCH", name="Bench", asset_type=stock, exchange="XNYS")
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def rows(shift: int) -> list[tuple[object, ...]]:
        price = Decimal(100 + shift)
        return [
            (asset.pk, "1d", start + timedelta(days=i), price, price, price, price, Decimal(1000), "bench")
            for i in range(n_bars)
        ]

    def row_by_row(batch: list[tuple[object, ...]]) -> int:  # the path before: autocommit executemany
        with connection.cursor() as cursor:
            return upserts._upsert_rows(cursor, BARS, batch)

    def one_transaction(batch: list[tuple[object, ...]]) -> int:  # the path now
        return upserts._execute(BARS, batch)

    timings: dict[str, list[float]] = {"row by row": [], "one transaction": []}
    for pair in range(pairs):
        for name, write in (("row by row", row_by_row), ("one transaction", one_transaction)):
            batch = rows(pair)
            began = time.perf_counter()
            assert write(batch) == n_bars
            timings[name].append(time.perf_counter() - began)
    for name, values in timings.items():
        median, best = statistics.median(values) * 1000, min(values) * 1000
        print(f"{name:16} {n_bars} bars: median {median:7.1f} ms  (min {best:.1f}, n={pairs})")


if __name__ == "__main__":
    main()
