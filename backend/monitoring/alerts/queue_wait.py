"""Queue-wait p95 per queue since the previous check, from the workers' histogram files.

The histogram is cumulative; the notifier keeps the bucket counts of its previous look in the cache
and takes the difference, so the p95 covers the tasks started since then. The p95 is the upper
bound of the bucket it falls in: an estimate on the safe (high) side.
"""

from __future__ import annotations

import math
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from prometheus_client.multiprocess import MultiProcessCollector

METRIC = "financehub_celery_task_queue_wait_seconds"
SNAPSHOT_KEY = "financehub:alerts:queue-wait"


def bucket_counts() -> dict[str, dict[float, float]]:
    """Cumulative bucket counts per queue (summed over tasks) from every process's metric file."""
    path = settings.PROMETHEUS_MULTIPROC_DIR
    counts: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    if not path.is_dir():
        return {}
    for family in MultiProcessCollector(None, path=str(path)).collect():
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.name == f"{METRIC}_bucket":
                counts[sample.labels["queue"]][float(sample.labels["le"])] += sample.value
    return {queue: dict(buckets) for queue, buckets in counts.items()}


def p95(buckets: dict[float, float]) -> float | None:
    """Upper bound of the bucket holding the 95th percentile of cumulative ``buckets`` (None: no tasks)."""
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= 0.95 * total:
            return bound
    return math.inf


def queue_wait_p95() -> dict[str, float]:
    """p95 queue wait per queue over the tasks started since the previous call."""
    current = bucket_counts()
    previous = cache.get(SNAPSHOT_KEY) or {}
    cache.set(SNAPSHOT_KEY, current, timeout=None)
    result = {}
    for queue, buckets in current.items():
        before = previous.get(queue, {})
        delta = {le: n - before.get(le, 0.0) for le, n in buckets.items()}
        if any(n < 0 for n in delta.values()):
            delta = buckets  # a worker restarted and its counts dropped: judge what is there
        value = p95(delta)
        if value is not None:
            result[queue] = value
    return result
