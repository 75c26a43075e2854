"""Two beat processes tick the same schedules for several slots: each slot's work runs once.

Every periodic task counts, not only the fan-outs: a doubled news fetch, heartbeat or cleanup is a
duplicate too. An execution "did the work" unless its result says it skipped.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from . import observe
from .accounting import Finding, History
from .scenario import explain, judge
from .stack import DB_ALIAS

pytestmark = pytest.mark.chaos

SLOT_SECONDS = 4
TICKS = 4  # per beat: three full slots at least between the first and the last
SCHEDULES = {
    "chaos quotes: crypto": ("quotes.dispatch", {"asset_class": "crypto"}),
    "chaos news": ("news.fetch", {}),
    "chaos heartbeat": ("maintenance.heartbeat", {}),
    "chaos cleanup": ("maintenance.cleanup", {}),
}


def make_schedules() -> None:
    """The schedules, written without model signals: django-celery-beat's would use the default database."""
    interval_model = observe.model("IntervalSchedule")
    periodic_model = observe.model("PeriodicTask")
    (every,) = interval_model.objects.using(DB_ALIAS).bulk_create(
        [interval_model(every=SLOT_SECONDS, period="seconds")]
    )
    periodic_model.objects.using(DB_ALIAS).bulk_create(
        periodic_model(
            name=name,
            task=task,
            kwargs=json.dumps(kwargs),
            interval=every,
            last_run_at=timezone.now() - timedelta(seconds=SLOT_SECONDS),
        )
        for name, (task, kwargs) in SCHEDULES.items()
    )
    # What the signal would have done: tell running beats the schedule changed.
    observe.model("PeriodicTasks").objects.using(DB_ALIAS).update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


def ticks(beat, schedule: str) -> int:
    return beat.log().count(f"Sending due task {schedule} (")


def executions(schedule: str) -> tuple[int, int]:
    """(results received, results that did the work) of one schedule's ticks."""
    rows = observe.model("TaskResult").objects.using(DB_ALIAS).filter(periodic_task_name=schedule)
    results = [json.loads(r.result or "null") for r in rows]
    worked = [r for r in results if not (isinstance(r, dict) and "skipped" in r)]
    return len(results), len(worked)


def test_two_beats_for_four_slots_run_every_periodic_task_once_per_slot(stack) -> None:
    observe.seed_crypto(3)
    make_schedules()
    stack.start_worker()
    beats = [stack.start_beat("a"), stack.start_beat("b")]
    deadline = time.monotonic() + SLOT_SECONDS * TICKS + 60
    while time.monotonic() < deadline and min(ticks(b, s) for b in beats for s in SCHEDULES) < TICKS:
        time.sleep(0.3)
    for beat in beats:
        stack.stop_process(beat)
    stopped = time.monotonic()
    sent = {s: [ticks(b, s) for b in beats] for s in SCHEDULES}

    def drained() -> bool:
        runs_open = any(r.status == "running" for r in observe.dispatch_runs("chaos quotes"))
        return not runs_open and all(executions(s)[0] >= sum(sent[s]) for s in SCHEDULES)

    recovery = observe.wait_recovered(drained, stopped, 60, 90)
    expected: set[str] = set()
    stored: set[str] = set()
    extra = 0
    findings = []
    for schedule, per_beat in sent.items():
        received, worked = executions(schedule)
        # Slots both beats surely ticked; a beat that started a little later may miss the first one.
        required = max(0, min(per_beat) - 1)
        expected |= {f"{schedule}#{i}" for i in range(required)}
        stored |= {f"{schedule}#{i}" for i in range(min(worked, required))}
        extra += max(0, worked - max(per_beat))
        findings.append(
            Finding(
                f"{schedule} once per slot", worked <= max(per_beat), f"ticks {per_beat}, ran {worked} of {received}"
            )
        )
    runs = [r for r in observe.dispatch_runs("chaos quotes") if r.status != "skipped"]
    slots = [r.slot for r in runs]
    findings.append(Finding("one dispatch run per slot", len(slots) == len(set(slots)), f"{len(runs)} runs"))
    findings.append(Finding("both beats ticked", min(min(v) for v in sent.values()) >= TICKS, f"ticks {sent}"))
    history = History(
        scenario=f"two beats, {len(SCHEDULES)} schedules, {SLOT_SECONDS} s slots",
        expected=frozenset(expected),
        stored=frozenset(stored),
        recovery_bound=60,
        recovery_seconds=recovery,
        duplicated_rows=extra,
        deliveries=observe.log_facts(stack.logs()).deliveries,
        retries=observe.log_facts(stack.logs()).retries,
        dead_letters=observe.dead_letters(stack),
        findings=tuple(findings),
    )
    verdict = judge(history, stack)
    assert verdict.ok, explain(verdict, stack)
