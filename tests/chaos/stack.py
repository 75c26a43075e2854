"""The system under test: real ``celery worker`` and ``celery beat`` subprocesses on private services.

The harness talks to the private broker through its own Celery app (to send tasks and ping
workers) and to the private database through an extra Django connection alias, so nothing in the
test process points at the shared services while a scenario runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import amqp.exceptions
import kombu.exceptions
import psutil
import redis
from celery import Celery
from django.conf import settings
from django.db import connections

from backend.stack.commands import beat_command, worker_command

from .fake import FakeProviderServer
from .services import PrivateServices, wait_until

REPO_DIR = Path(__file__).resolve().parents[2]
DB_ALIAS = "chaos"
RATE_LIMIT_SETTINGS = ("YAHOO", "BINANCE", "COINGECKO", "ALPHA_VANTAGE", "COINMARKETCAP", "NEWSAPI")
# Environment variables of the outer shell that name the shared services: never passed on.
SHARED_SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROVIDER_STATE_REDIS_URL")


@dataclass
class Process:
    """A worker or beat subprocess: its name, process and log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def children(self) -> list[int]:
        """Pool process ids of a prefork worker."""
        try:
            return [child.pid for child in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []


@dataclass
class Stack:
    """Private services, the fake provider server, and the processes a scenario started."""

    services: PrivateServices
    fake: FakeProviderServer
    app: Celery
    processes: list[Process] = field(default_factory=list)
    env_overrides: dict[str, str] = field(default_factory=dict)
    # A private RabbitMQ vhost's URL when the scenario runs on RabbitMQ; empty: the private Redis is the broker.
    amqp_url: str = ""

    @property
    def broker_url(self) -> str:
        return self.amqp_url or self.services.redis.url

    @property
    def var_dir(self) -> Path:
        return self.services.root / "var"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Environment of a subprocess: the private services, fake providers, no shared URL."""
        base = {k: v for k, v in os.environ.items() if k not in SHARED_SERVICE_VARIABLES}
        return {
            **base,
            "DATABASE_URL": self.services.postgres.url,
            "REDIS_URL": self.services.redis.url,
            # Redis stays the store of quotas, breakers, pauses, liveness and dead-letter state either way.
            **({"CELERY_BROKER_URL": self.amqp_url} if self.amqp_url else {}),
            "FINANCEHUB_VAR_DIR": str(self.var_dir),
            "MARKET_DATA_MODE": "fake",
            "FAKE_PROVIDER_URL": self.fake.url,
            # Quotas and breakers have their own tests; here they must not turn injected faults
            # into a different failure than the one the scenario is about.
            **{f"{name}_RATE_LIMIT": "100000/second" for name in RATE_LIMIT_SETTINGS},
            "BREAKER_FAILURE_THRESHOLD": "100000",
            "FINANCEHUB_EXTRA_TASK_MODULES": "tests.fixtures.failing_tasks",
            **self.env_overrides,
            **(extra or {}),
        }

    def manage(self, *args: str, timeout: float = 300) -> str:
        """Run ``manage.py`` against the private services; return its output."""
        done = subprocess.run(
            [sys.executable, "backend/manage.py", *args],
            cwd=REPO_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None) -> Process:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.var_dir / f"{name}.log"
        with log_path.open("ab") as log:
            # Own session: teardown can kill the process group (main process and pool children).
            popen = subprocess.Popen(
                command,
                cwd=REPO_DIR,
                env=self.env(extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_worker(self, extra_env: dict[str, str] | None = None, *, concurrency: int = 2) -> Process:
        """Start ``celery worker -Q high,medium,low`` and wait until it answers a ping."""
        name = f"chaos-{uuid.uuid4().hex[:6]}@localhost"
        command = worker_command(
            settings.TASK_QUEUES, concurrency=concurrency, pool="prefork", hostname=name, loglevel="INFO",
            without=("heartbeat", "gossip", "mingle"),
        )  # fmt: skip
        worker = self._spawn(f"worker-{name.split('@')[0]}", command, extra_env)
        worker.name = name
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker exited during start-up:\n{worker.log()[-3000:]}")
            try:
                if self.app.control.ping(destination=[name], timeout=1.0):
                    return worker
            except (OSError, redis.RedisError, kombu.exceptions.OperationalError, amqp.exceptions.AMQPError):
                # A connection pooled before a broker restart: start over with fresh connections.
                self.app.close()
                self.app = harness_app(self.broker_url)
                time.sleep(0.5)
        raise RuntimeError(f"worker did not answer ping within 90 s:\n{worker.log()[-3000:]}")

    def start_beat(self, name: str, extra_env: dict[str, str] | None = None) -> Process:
        """Start ``celery beat`` with the DatabaseScheduler."""
        command = beat_command(schedule=str(self.var_dir / f"beat-{name}.schedule"))
        return self._spawn(f"beat-{name}", command, extra_env)

    def workers(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("chaos-")]

    def logs(self) -> str:
        """Every worker log of the scenario, concatenated."""
        return "\n".join(p.log() for p in self.workers())

    def send(self, task: str, args: tuple = (), kwargs: dict | None = None, *, queue: str = "high") -> str:
        """Send a task by name to the private broker; return its id."""
        return self.app.send_task(task, args=list(args), kwargs=kwargs or {}, queue=queue).id

    def stop_process(self, process: Process, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Signal a process and wait for it; kill its whole group if it does not stop in time."""
        if process.alive():
            process.process.send_signal(sig)
            try:
                process.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group(process)

    def _kill_group(self, process: Process) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
        try:
            process.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        """Stop every process the scenario started (warm first, then kill)."""
        for process in self.processes:
            if process.alive():
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.process.wait(20)
            except subprocess.TimeoutExpired:
                pass
            self._kill_group(process)
        self.processes.clear()


def harness_app(broker_url: str) -> Celery:
    """A Celery app of the test process bound to the private broker (sending and control only)."""
    app = Celery("chaos-harness", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_queues=settings.CELERY_TASK_QUEUES,
        broker_connection_retry_on_startup=True,
        # kombu keeps one connection pool per distinct connection, process-wide: a key of its own
        # keeps this app's pool (and its closing) away from every other app on the same URL.
        broker_transport_options={"queue_order_strategy": "priority", "harness": uuid.uuid4().hex},
    )
    return app


def database_settings(url: str) -> dict[str, object]:
    """Django settings of the private database."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": "",
        "HOST": parts.hostname,
        "PORT": str(parts.port),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"connect_timeout": 3},
    }


@contextmanager
def database_alias(url: str) -> Iterator[str]:
    """Register the private database as a connection alias for the duration of the block.

    Removed afterwards, so pytest-django never sees it when it sets up or tears down test databases.
    """
    configured = connections.configure_settings(
        {"default": dict(settings.DATABASES["default"]), DB_ALIAS: database_settings(url)}
    )
    connections.settings[DB_ALIAS] = configured[DB_ALIAS]
    try:
        yield DB_ALIAS
    finally:
        if hasattr(connections._connections, DB_ALIAS):
            connections[DB_ALIAS].close()
            delattr(connections._connections, DB_ALIAS)
        connections.settings.pop(DB_ALIAS, None)


def wait_for_worker_exit(process: Process, timeout: float) -> float:
    """Wait for a worker to exit on its own; return how long it took."""
    started = time.monotonic()
    wait_until(lambda: not process.alive(), timeout, f"worker {process.name} did not exit")
    return time.monotonic() - started
