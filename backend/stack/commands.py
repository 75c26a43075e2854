"""The command lines that start this stack's Celery processes, for the tests and benchmarks that start them.

``celery -A backend.stack`` names the composition root (``APP``); every worker, beat and Flower a test
or a benchmark starts is built here, so that path, or a flag every one of them needs, changes in one
place. The Procfile, ``docker-compose.yml`` and the docs spell the same lines out for operators
(``tests/unit/test_docker_compose.py`` holds compose to ``APP``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

APP = "backend.stack"
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def celery_command(*args: str, app: str = APP) -> list[str]:
    """``python -m celery -A APP ARGS`` with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", app, *args]


def worker_command(
    queues: Iterable[str] | str,
    *,
    hostname: str | None = None,
    concurrency: int | None = None,
    pool: str | None = None,
    loglevel: str | None = None,
    without: Sequence[str] = (),
    app: str = APP,
) -> list[str]:
    """``celery worker -Q QUEUES`` with the options given (``without``: ``heartbeat``, ``gossip``, ``mingle``)."""
    listen = queues if isinstance(queues, str) else ",".join(queues)
    command = celery_command("worker", "-Q", listen, app=app)
    for flag, value in (("--concurrency", concurrency), ("--pool", pool), ("--hostname", hostname)):
        if value is not None:
            command += [flag, str(value)]
    if loglevel is not None:
        command += ["--loglevel", loglevel]
    return command + [f"--without-{name}" for name in without]


def beat_command(*, schedule: str | None = None, loglevel: str = "INFO") -> list[str]:
    """``celery beat`` with the database scheduler, no pid file, and its local state in ``schedule``."""
    command = celery_command("beat", "-S", BEAT_SCHEDULER, "--loglevel", loglevel, "--pidfile=")
    return command + (["--schedule", schedule] if schedule is not None else [])
