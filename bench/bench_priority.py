"""Does urgent work start first? Probe latency behind 10,000 queued low tasks, on Redis and RabbitMQ.

Real `celery worker` subprocesses with the platform's settings (two worker processes in all), a
backlog in `low` topped up to --backlog before every trial, then a probe whose start the worker
records. Two scenarios:

- ``urgent``: the backlog holds short tasks, long ones (backfill-sized, --long-seconds; the first two
  at the front so they hold processes) and a share sent without any priority. The probe is a quote
  batch on ``high`` at priority 3, the least urgent priority a quote batch gets in session.
- ``within-queue``: short tasks only, priority 9 or none; the probe goes to ``low`` itself at
  priority 0: within one queue, 0 must beat 9.

Topologies: ``before`` is one worker on high,medium,low with two processes (what `make run` started);
``after`` is one process reserved for ``high`` plus one process on high,medium,low. Settings are
whatever the code tree this file runs from holds: run it from an export of the old commit for
"before" figures (see docs/BENCHMARKS.md).

    REDIS_URL=redis://127.0.0.1:6379/7 DATABASE_URL=postgres://postgres@127.0.0.1:5432/fh_prio \\
        .venv/bin/python -m bench.bench_priority --broker redis --topology after --scenario urgent
    ... --broker amqp://guest:guest@127.0.0.1:5672/fh_bench_after ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from backend.stack.commands import worker_command

REPO_DIR = Path(__file__).resolve().parent.parent
TOPOLOGIES = {
    "before": (("bench-all", "high,medium,low", 2),),
    "after": (("bench-urgent", "high", 1), ("bench-general", "high,medium,low", 1)),
}
SHORT_SECONDS = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="redis", help="'redis' (REDIS_URL) or an amqp:// URL")
    parser.add_argument("--topology", choices=sorted(TOPOLOGIES), default="after")
    parser.add_argument("--scenario", choices=("urgent", "within-queue"), default="urgent")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--unprioritised", type=float, default=0.2, help="share of low tasks sent without priority")
    parser.add_argument("--long-every", type=int, default=100, help="one long task per this many low tasks")
    parser.add_argument("--long-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="give up on a probe after this many seconds")
    args = parser.parse_args()

    redis_url = os.environ["REDIS_URL"]
    os.environ["CELERY_BROKER_URL"] = redis_url if args.broker == "redis" else args.broker
    os.environ["BENCH_REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.core.settings")
    os.environ.setdefault("FINANCEHUB_VAR_DIR", str(REPO_DIR / "var" / "bench"))
    sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()
    from backend.core.celery import app

    bench = PriorityBench(app, args)
    try:
        latencies = bench.run()
    finally:
        bench.stop()
    report(args, latencies)


class PriorityBench:
    """Workers, backlog and probes of one run."""

    def __init__(self, app, args: argparse.Namespace) -> None:
        import redis

        self.app = app
        self.args = args
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.workers: list[subprocess.Popen] = []
        self.sent = 0

    def run(self) -> list[float | None]:
        with self.app.connection_for_write() as conn:
            for queue in self.app.amqp.queues.values():  # as a worker would, so purge finds them
                queue.bind(conn.default_channel).declare()
        self.app.control.purge()
        self.fill(front_long=self.args.scenario == "urgent")
        self.start_workers()
        time.sleep(2)  # let the workers take the front of the backlog (the long tasks, if any)
        latencies = []
        for trial in range(self.args.trials):
            self.fill()
            time.sleep(random.uniform(0.2, 0.6))
            latencies.append(self.probe())
            print(f"trial {trial + 1}: {fmt(latencies[-1])}", file=sys.stderr, flush=True)
        return latencies

    def backlog(self) -> int:
        with self.app.connection_for_write() as conn:
            return self.app.amqp.queues["low"].bind(conn.default_channel).queue_declare().message_count

    def fill(self, *, front_long: bool = False) -> None:
        """Top the low queue up to --backlog with the scenario's mix."""
        missing = self.args.backlog - self.backlog()
        with self.app.producer_or_acquire() as producer:
            if front_long:
                for _ in range(2):
                    self.send_low(producer, self.args.long_seconds, 8)
                    missing -= 1
            for _ in range(max(0, missing)):
                self.sent += 1
                long = self.args.scenario == "urgent" and self.sent % self.args.long_every == 0
                unprioritised = random.random() < self.args.unprioritised
                priority = (
                    None if unprioritised else (9 if self.args.scenario == "within-queue" else random.choice((8, 9)))
                )
                self.send_low(producer, self.args.long_seconds if long else SHORT_SECONDS, priority)

    def send_low(self, producer, seconds: float, priority: int | None) -> None:
        options = {"queue": "low", "producer": producer}
        if priority is not None:
            options["priority"] = priority
        self.app.send_task("bench.busy", args=(seconds,), **options)

    def probe(self) -> float | None:
        token = uuid.uuid4().hex
        queue, priority = ("high", 3) if self.args.scenario == "urgent" else ("low", 0)
        sent_at = time.time()
        self.app.send_task("bench.mark", args=(token,), queue=queue, priority=priority)
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            started = self.redis.get(f"bench:probe:{token}")
            if started is not None:
                return float(started) - sent_at
            time.sleep(0.01)
        return None

    def start_workers(self) -> None:
        log_dir = Path(os.environ["FINANCEHUB_VAR_DIR"]) / "bench-priority"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FINANCEHUB_EXTRA_TASK_MODULES": "bench.priority_tasks", "PYTHONPATH": str(REPO_DIR)}
        names = []
        for name, queues, concurrency in TOPOLOGIES[self.args.topology]:
            hostname = f"{name}-{uuid.uuid4().hex[:6]}@bench"
            command = worker_command(
                queues, concurrency=concurrency, hostname=hostname, loglevel="WARNING", without=("gossip", "mingle")
            )
            log = (log_dir / f"{name}.log").open("w")
            self.workers.append(subprocess.Popen(command, cwd=REPO_DIR, env=env, stdout=log, stderr=log))
            names.append(hostname)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = self.app.control.ping(destination=names, timeout=1.0)
            if len(replies) == len(names):
                return
        raise SystemExit("workers did not answer a ping within 60 s; see var/bench/bench-priority/*.log")

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.app.control.purge()


def fmt(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.3f} s"


def report(args: argparse.Namespace, latencies: list[float | None]) -> None:
    done = sorted(v for v in latencies if v is not None)
    timeouts = len(latencies) - len(done)
    # Timeouts count as the slowest results: a p95 with any of them in its tail is "> timeout".
    ranked = done + [float("inf")] * timeouts
    p95 = ranked[max(0, round(0.95 * len(ranked)) - 1)]
    result = {
        "broker": args.broker.split("://")[0] if "://" in args.broker else args.broker,
        "topology": args.topology,
        "scenario": args.scenario,
        "trials": len(latencies),
        "p50": statistics.median(ranked) if ranked else None,
        "p95": p95,
        "max": ranked[-1] if ranked else None,
        "timeouts": timeouts,
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
