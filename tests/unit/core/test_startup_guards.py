"""Bad configuration stops every entry point with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.stack.commands import worker_command

REPO_DIR = Path(__file__).resolve().parents[3]


def start(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backend.core.settings", **env}
    return subprocess.run(argv, cwd=REPO_DIR, env=full_env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"DATABASE_URL": "postgres://user:secret@host:notaport/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"REDIS_URL": "redis://:secret@host:99999999/0"}, "REDIS_URL"),
        ({"REDIS_URL": "gopher://host"}, "REDIS_URL"),
        (
            {"CELERY_TASK_SOFT_TIME_LIMIT": "150", "CELERY_TASK_TIME_LIMIT": "150"},
            "CELERY_TASK_SOFT_TIME_LIMIT",
        ),
        ({"CELERY_VISIBILITY_TIMEOUT": "100"}, "CELERY_VISIBILITY_TIMEOUT"),
        # A retry countdown longer than the visibility timeout allows would be delivered twice.
        ({"TASK_RETRY_BACKOFF_MAX": "600"}, "CELERY_VISIBILITY_TIMEOUT"),
        ({"CELERY_TASK_TIME_LIMIT": "ten"}, "CELERY_TASK_TIME_LIMIT"),
        ({"MARKET_DATA_MODE": "magic"}, "MARKET_DATA_MODE"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"CELERY_RESULT_EXPIRES": "604800"}, "RETENTION_TASK_RESULTS_DAYS"),
        # The cache in the broker's or the provider state's database: cache.clear() would empty it.
        ({"REDIS_URL": "redis://:secret@h:6379/0", "CACHE_REDIS_URL": "redis://h/0"}, "CACHE_REDIS_URL"),
        (
            {"REDIS_URL": "redis://h:6379/0", "PROVIDER_STATE_REDIS_URL": "redis://:secret@h:6379/1"},
            "CACHE_REDIS_URL",
        ),
        ({"REDIS_URL": "redis://h:6379/15"}, "CACHE_REDIS_URL"),
        # On RabbitMQ a message held past consumer_timeout closes its channel and is delivered twice.
        (
            {"CELERY_BROKER_URL": "amqp://fh:secret@h:5672/fh", "RABBITMQ_CONSUMER_TIMEOUT": "300"},
            "RABBITMQ_CONSUMER_TIMEOUT",
        ),
    ],
)
def test_manage_py_refuses_bad_configuration_with_one_line(env: dict[str, str], setting: str) -> None:
    result = start([sys.executable, "backend/manage.py", "check"], **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "secret" not in result.stderr


def test_the_celery_worker_refuses_bad_configuration_with_one_line() -> None:
    result = start(
        worker_command(["high"]),
        CELERY_TASK_SOFT_TIME_LIMIT="200",
        CELERY_TASK_TIME_LIMIT="100",
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: CELERY_TASK_SOFT_TIME_LIMIT (200) must be below CELERY_TASK_TIME_LIMIT (100)"
    ]


def test_good_configuration_starts() -> None:
    result = start([sys.executable, "backend/manage.py", "check"])
    assert result.returncode == 0, result.stderr
