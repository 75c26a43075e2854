"""Per-task cost: no-op drain rate of the platform's real configuration against a bare Celery app.

Both run as real ``celery worker`` subprocesses (prefork, 2 processes, the same flags: the Procfile's
``--loglevel INFO``, heartbeat, gossip and mingle on) on the same Redis. Each trial fills the queue with
--tasks no-op messages while no worker runs, starts the worker and times from the first message taken
to the moment the queue and Redis' unacked set are empty (every message acknowledged). Trials alternate
platform / bare; the median of each side is reported.

- platform: ``bench.noop`` (bench/overhead_tasks.py), declared like ``indicators.compute``, on the
  ``medium`` queue of a worker started like the Procfile's (``-Q high,medium,low``), with every setting
  of backend/core/settings/: result backend, events, late acks, delivery counter, Django fixup.
- bare: ``bare.noop`` (bench/bare_app.py), Celery's defaults.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fh_perf REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python -m bench.bench_overhead --tasks 3000 --trials 3 [--broker amqp://guest:guest@127.0.0.1:5672/VHOST]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from backend.stack.commands import APP, worker_command
from bench.harness import REPO_DIR, setup_django

PRIORITY_SEP = "\x06\x16"
SIDES = {
    "platform": {"app": APP, "task": "bench.noop", "queue": "medium", "listen": "high,medium,low"},
    "bare": {"app": "bench.bare_app", "task": "bare.noop", "queue": "celery", "listen": "celery"},
}


def queue_keys(queue: str) -> list[str]:
    """Every Redis list kombu may file ``queue``'s messages under (one per priority step)."""
    return [queue, *(f"{queue}{PRIORITY_SEP}{step}" for step in range(1, 10))]


class AmqpBacklog:
    """RabbitMQ's side of ``pending``: the queue's ready messages (passive declare, one round trip).

    Delivered but unacknowledged messages are not counted: the platform's worker holds at most two
    (prefetch 1, two processes), the bare one eight (Celery's default prefetch of 4 per process), so the
    clock stops that many no-ops early (0.4 % of 2,000 at most).
    """

    def __init__(self, url: str) -> None:
        from kombu import Connection

        self.connection = Connection(url)

    def pending(self, queue: str) -> int:
        return self.connection.default_channel.queue_declare(queue=queue, passive=True).message_count

    def purge(self, queue: str) -> None:
        """Drop what an earlier worker handed back when it stopped (prefetched, not yet run)."""
        self.connection.default_channel.queue_purge(queue)


def pending(client, queue: str) -> int:
    """Messages still queued plus delivered but not yet acknowledged."""
    if isinstance(client, AmqpBacklog):
        return client.pending(queue)
    with client.pipeline(transaction=False) as pipe:
        for key in queue_keys(queue):
            pipe.llen(key)
        pipe.hlen("unacked")
        return sum(pipe.execute())


def fill(side: str, n: int, env: dict[str, str]) -> None:
    """Queue ``n`` no-op messages for ``side`` (no worker consumes them yet)."""
    if side == "platform":
        from django.test import override_settings

        from bench.overhead_tasks import send

        # The one setting read where batches are sent rather than in the worker.
        with override_settings(BATCH_TASK_RESULTS=env.get("BATCH_TASK_RESULTS", "") in {"1", "true"}):
            for _ in range(n):
                send("medium")
    else:
        from bench.bare_app import noop

        for _ in range(n):
            noop.apply_async()


def start_worker(side: str, log_dir: Path, env: dict[str, str], profile: Path | None = None) -> subprocess.Popen[bytes]:
    """A worker for ``side``: the Procfile's flags, 2 prefork processes (under py-spy with ``profile``)."""
    spec = SIDES[side]
    hostname = f"bench-{side}-{uuid.uuid4().hex[:6]}@localhost"
    command = worker_command(
        spec["listen"], concurrency=2, pool="prefork", loglevel="INFO", hostname=hostname, app=spec["app"]
    )
    if profile is not None:
        spy = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--format", "raw"]
        command = [*spy, "--rate", "200", "-o", str(profile / f"{side}.txt"), "--", *command]
    log = (log_dir / f"overhead-{side}.log").open("ab")
    env = {**os.environ, "FINANCEHUB_EXTRA_TASK_MODULES": "bench.overhead_tasks", **env}
    if side == "bare":
        # Celery's Django fixup would load Django (and this project's receivers and logging) into the bare app.
        env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Warm-shut the worker down (py-spy passes the signal on and writes its profile)."""
    process.send_signal(signal.SIGINT if "py-spy" in str(process.args[0]) else signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def drain_rate(side: str, n: int, client, log_dir: Path, env: dict[str, str], profile: Path | None = None) -> float:
    """Tasks per second one fresh worker drains ``n`` queued no-ops at (``env`` added to the worker's)."""
    queue = SIDES[side]["queue"]
    if isinstance(client, AmqpBacklog):
        client.purge(queue)
    fill(side, n, env)
    settle = time.monotonic() + 10  # RabbitMQ counts a message once it has routed it, a moment after the send
    while pending(client, queue) != n and time.monotonic() < settle:
        time.sleep(0.05)
    if pending(client, queue) != n:
        raise SystemExit(f"{side}: expected {n} queued messages, found {pending(client, queue)}")
    worker = start_worker(side, log_dir, env, profile)
    try:
        deadline = time.monotonic() + 120
        while (left := pending(client, queue)) >= n:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"{side}: the worker took nothing (see {log_dir})")
            time.sleep(0.002)
        started, at_start = time.monotonic(), left
        while pending(client, queue) > 0:
            if time.monotonic() > deadline + 600:
                raise SystemExit(f"{side}: not drained")
            time.sleep(0.002)
        return at_start / (time.monotonic() - started)
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--sides", default="platform,bare")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="an extra platform side NAME:KEY=VALUE,KEY=VALUE (environment of its worker), e.g. "
        "'results stored:BATCH_TASK_RESULTS=1'",
    )
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles (collapsed stacks), one per side")
    parser.add_argument("--broker", default="redis", help="'redis' (REDIS_URL) or an amqp:// URL of an empty vhost")
    args = parser.parse_args()
    broker = os.environ["REDIS_URL"] if args.broker == "redis" else args.broker
    os.environ["BENCH_BROKER_URL"] = broker
    # Workers inherit it; REDIS_URL stays the store of provider state and dead-letter counts.
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["FINANCEHUB_EXTRA_TASK_MODULES"] = "bench.overhead_tasks"
    setup_django()
    import redis
    from django.conf import settings

    from tests.fixtures.worker import purge_queues

    log_dir = Path(settings.VAR_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.broker == "redis":
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        purge_queues()
        client.delete("celery", "unacked", "unacked_index")
    else:
        client = AmqpBacklog(broker)
        purge_queues()
    variants: dict[str, tuple[str, dict[str, str]]] = {side: (side, {}) for side in args.sides.split(",")}
    for spec in args.variant:
        name, _, assignments = spec.partition(":")
        variants[name] = ("platform", dict(item.split("=", 1) for item in assignments.split(",") if item))
    sides = list(variants)
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for trial in range(args.trials):
        for side in sides:
            kind, env = variants[side]
            rate = drain_rate(kind, args.tasks, client, log_dir, env, args.profile)
            rates[side].append(rate)
            print(f"trial {trial + 1} {side}: {rate:,.0f} tasks/s", flush=True)
    medians = {side: statistics.median(values) for side, values in rates.items()}
    print("| side | trials (tasks/s) | median (tasks/s) |")
    print("|---|---|---:|")
    for side in sides:
        print(f"| {side} | {', '.join(f'{r:,.0f}' for r in rates[side])} | {medians[side]:,.0f} |")
    if {"platform", "bare"} <= medians.keys():
        print(f"platform / bare: {medians['platform'] / medians['bare']:.0%}")


if __name__ == "__main__":
    main()
