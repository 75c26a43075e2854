"""Shared fixtures: a real Celery worker subprocess and asset factories.

Integration tests run the same worker command an operator runs, against the
broker and database the settings point at: Redis and PostgreSQL when
``REDIS_URL``/``DATABASE_URL`` are set (as in CI), the embedded defaults otherwise.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.worker", "tests.fixtures.factories", "tests.fixtures.deadletters"]


@pytest.fixture(scope="session", autouse=True)
def shared_metric_files() -> None:
    """Like web, beat and workers, the test process writes its task metrics to the shared files."""
    from backend.tasks.telemetry import multiproc

    multiproc.enable()
