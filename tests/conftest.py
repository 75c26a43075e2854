"""Shared fixtures: a real Celery worker subprocess and asset factories.

Integration tests run the same worker command an operator runs, against the
broker and database the settings point at: Redis and PostgreSQL when
``REDIS_URL``/``DATABASE_URL`` are set (as in CI), the embedded defaults otherwise.
"""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.worker", "tests.fixtures.factories", "tests.fixtures.deadletters"]
