"""One quote fan-out under one fault: seed, dispatch, inject, wait for recovery, account, judge."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.fixtures.worker import report

from . import observe
from .accounting import Finding, History, Verdict, check, settled
from .stack import Process, Stack

DISPATCH_SCHEDULE = "quotes.dispatch:crypto"
# A scenario run once on the private Redis and once on a private RabbitMQ node (``chaos_broker``).
ON_BOTH_BROKERS = pytest.mark.parametrize("chaos_broker", ["redis", "amqp"], indirect=True)


@dataclass
class QuoteRun:
    """A running fan-out of quote batches over ``symbols``, and the worker serving it."""

    stack: Stack
    symbols: list[str]
    worker: Process
    started_wall: object  # aware datetime the scenario started at (quotes stored since count)
    started: float  # monotonic
    extra_findings: list[Finding] = field(default_factory=list)

    def stored(self) -> frozenset[str]:
        return observe.stored_since(self.symbols, self.started_wall)

    def complete(self, accepted_dead_letter: str = "") -> bool:
        """Every item stored (or, when the scenario accepts that end, held by a dead letter) and the run closed.

        The dead letters are read here, not only after recovery: the run closes on the batch's failed
        count, which is written before its dead letter, so only the dead letter itself shows the end.
        """
        run = observe.run_count(DISPATCH_SCHEDULE)
        letters = observe.dead_letters(self.stack) if accepted_dead_letter else ()
        return settled(frozenset(self.symbols), self.stored(), letters, accepted_dead_letter, run)

    def wait_in_flight(self, timeout: float = 120) -> None:
        """Wait until the first batch is stored, so the next ones are running or queued."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if observe.db_down_safe(lambda: len(self.stored()), 0):
                return
            time.sleep(0.1)
        raise TimeoutError(f"no batch stored within {timeout} s:\n{self.worker.log()[-3000:]}")


def start_quote_run(
    stack: Stack,
    *,
    assets: int,
    batch_size: int,
    hang: float | None = None,
    worker_env: dict[str, str] | None = None,
) -> QuoteRun:
    """Seed ``assets`` crypto assets, start a worker, dispatch one quote run over them.

    ``hang`` makes every Binance request take that long, so batches stay in flight for a while.
    """
    stack.env_overrides["QUOTE_BATCH_SIZE"] = str(batch_size)
    symbols = observe.seed_crypto(assets)
    if hang:
        stack.fake.set_fault("binance", "hang", seconds=hang)
    worker = stack.start_worker(worker_env)
    started_wall = timezone.now()
    started = time.monotonic()
    stack.send("quotes.dispatch", kwargs={"asset_class": "crypto"})
    return QuoteRun(stack, symbols, worker, started_wall, started)


def fault_in_flight(
    stack: Stack,
    scenario: str,
    inject: Callable[[QuoteRun], float],
    *,
    assets: int,
    batch_size: int,
    bound: float,
    checks: list[Callable[[QuoteRun], Finding]] | None = None,
    patience: float | None = None,
    worker_env: dict[str, str] | None = None,
) -> Verdict:
    """Start a quote run of held batches, call ``inject`` once they are in flight, and judge the recovery.

    ``inject`` returns the moment (monotonic) the fault was over, which recovery is measured from;
    ``checks`` are findings about the run, as in ``finish``.
    """
    run = start_quote_run(stack, assets=assets, batch_size=batch_size, hang=1.0, worker_env=worker_env)
    run.wait_in_flight()
    fault_over = inject(run)
    probes = [lambda probe=probe: probe(run) for probe in checks or ()]
    return finish(run, scenario, fault_over=fault_over, bound=bound, patience=patience, checks=probes)


def finish(
    run: QuoteRun,
    scenario: str,
    *,
    fault_over: float,
    bound: float,
    patience: float | None = None,
    expected_dead_letters: int = 0,
    accepted_dead_letter: str = "",
    checks: list[Callable[[], Finding]] | None = None,
    until: Callable[[], bool] | None = None,
) -> Verdict:
    """Wait for recovery (measured from ``fault_over``), collect the history and judge it.

    ``checks`` are scenario-specific findings, evaluated once the scenario has recovered; ``until``
    is a further condition of recovery (a dead letter written, say). ``accepted_dead_letter`` (an
    exception class name) lets a batch end retried and then dead-lettered with it: its items count as
    failed when a dead letter holds them (``accounting.accepted_dead_letters``).
    """

    def recovered() -> bool:
        return run.complete(accepted_dead_letter) and (until is None or until())

    recovery = observe.wait_recovered(recovered, fault_over, bound, patience or bound + 30)
    # Redeliveries of a batch that had already finished would show up just after: give them a moment.
    time.sleep(2)
    facts = observe.log_facts(run.stack.logs(), "quotes.fetch")
    history = History(
        scenario=scenario,
        expected=frozenset(run.symbols),
        stored=run.stored(),
        recovery_bound=bound,
        recovery_seconds=recovery,
        duplicated_rows=observe.duplicated_rows(),
        run=observe.run_count(DISPATCH_SCHEDULE),
        deliveries=facts.deliveries,
        retries=facts.retries,
        deferrals=facts.deferrals,
        dead_letters=observe.dead_letters(run.stack),
        expected_dead_letters=expected_dead_letters,
        accepted_dead_letter=accepted_dead_letter,
        findings=tuple([*(probe() for probe in checks or ()), *run.extra_findings]),
    )
    return judge(history, run.stack)


def judge(history: History, stack: Stack) -> Verdict:
    """Check a history; its table goes to the run's closing summary and to a results file."""
    broker = "rabbitmq" if stack.amqp_url else "redis"
    # The ledger names the broker of every scenario that is not on the default (Redis) one.
    verdict = check(replace(history, scenario=f"{history.scenario} [RabbitMQ]") if stack.amqp_url else history)
    for line in verdict.table().splitlines():
        report(line)
    results = Path(settings.VAR_DIR) / "chaos-results.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as out:
        out.write(json.dumps({"at": timezone.now().isoformat(), "broker": broker, **verdict.figures()}) + "\n")
    return verdict


def explain(verdict: Verdict, stack: Stack) -> str:
    """The accounting table and the tail of every process log, for a failed assertion."""
    logs = "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in stack.processes)
    return f"{verdict.table()}\n{logs}"


def kill_busy_child(stack: Stack, worker: Process, sig: int, timeout: float = 30) -> int:
    """Send ``sig`` to a pool process of ``worker`` that is running a task right now; return its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = stack.app.control.inspect(destination=[worker.name], timeout=2).active() or {}
        pids = [request["worker_pid"] for request in active.get(worker.name, ()) if request.get("worker_pid")]
        if pids:
            os.kill(pids[0], sig)
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"no pool process of {worker.name} ran a task within {timeout} s")


def wait_until_stopped(worker: Process, timeout: float) -> bool:
    """Wait for a process to exit; return whether it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        time.sleep(0.1)
    return not worker.alive()
