"""Tasks the priority benchmark puts on a real worker (loaded through FINANCEHUB_EXTRA_TASK_MODULES).

They touch neither the database nor the result backend: the benchmark measures the broker and the
worker, not the work.
"""

from __future__ import annotations

import os
import time

import redis

from backend.core.celery import app

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


@app.task(name="bench.busy", ignore_result=True)
def busy(seconds: float) -> None:
    """Stand-in for low work: a quick job, or a backfill-sized one that holds its process."""
    time.sleep(seconds)


@app.task(name="bench.mark", ignore_result=True)
def mark(token: str) -> None:
    """Record when this probe started, for the benchmark to compare with when it was sent."""
    _redis().set(f"bench:probe:{token}", repr(time.time()), ex=3600)
