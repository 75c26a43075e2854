"""Shared fixtures: a real Celery worker subprocess and asset factories.

Integration tests run the same worker command an operator runs, against the
broker and database the settings point at: Redis and PostgreSQL when
``REDIS_URL``/``DATABASE_URL`` are set (as in CI), the embedded defaults otherwise.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.brokers",
    "tests.fixtures.worker",
    "tests.fixtures.draining",
    "tests.fixtures.factories",
    "tests.fixtures.deadletters",
    "tests.fixtures.in_process_worker",
]


@pytest.fixture
def empty_cache() -> Iterator[None]:
    """The cache (schedule locks, claimed tick slots) empty before and after the test.

    Only the cache's own database is cleared: settings refuse a cache that shares the broker's or the
    provider state's Redis database, and this checks it again before a FLUSHDB could reach either.
    """
    from django.core.cache import cache

    from backend.core.environment import redis_location

    cache_at = redis_location(str(settings.CACHES["default"].get("LOCATION", "")))
    shared = {redis_location(settings.CELERY_BROKER_URL), redis_location(settings.PROVIDER_STATE_REDIS_URL or "")}
    assert cache_at is None or cache_at not in shared, "the cache shares a Redis database with the broker"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def shared_metric_files() -> Iterator[Path]:
    """Like web, beat and workers, the test process writes its task metrics to the shared files.

    The directory is the session's own, empty at the start: files an interrupted earlier run left
    (or an orphaned worker of it still writes) would otherwise be merged into this run's scrapes.
    Workers and beat started by the tests get it too (``subprocess_env``).
    """
    from backend.tasks.telemetry import multiproc

    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="prometheus-", dir=settings.VAR_DIR))
    with pytest.MonkeyPatch.context() as env, override_settings(PROMETHEUS_MULTIPROC_DIR=path):
        env.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))  # enable() sets it too; set here so it is undone
        multiproc.enable()
        yield path
    shutil.rmtree(path, ignore_errors=True)
