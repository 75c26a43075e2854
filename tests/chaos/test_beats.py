"""Two beat processes tick the same schedules for several slots: each slot's work runs once.

Every periodic task counts, not only the fan-outs: a doubled news fetch, heartbeat or cleanup is a
duplicate too. An execution "did the work" unless its result says it skipped.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from . import observe
from .accounting import Finding, History
from .scenario import ON_BOTH_BROKERS, explain, judge
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


def tick_times(beat, schedule: str) -> list[datetime]:
    """When ``beat`` sent ``schedule``, from its log (local time; only differences are used)."""
    pattern = re.compile(
        r"^(\S+ \S+) INFO celery\.beat Scheduler: Sending due task " + re.escape(schedule) + r" \(", re.M
    )
    return [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC) for stamp in pattern.findall(beat.log())
    ]


def cycles(times: list[datetime]) -> int:
    """Beat cycles among the ticks of both beats: ticks closer than half a slot are one cycle."""
    count, start = 0, None
    for at in sorted(times):
        if start is None or (at - start).total_seconds() >= SLOT_SECONDS / 2:
            count, start = count + 1, at
    return count


def worked(schedule: str) -> tuple[int, int]:
    """(results received, results that did the work) of one schedule's ticks."""
    rows = observe.model("TaskResult").objects.using(DB_ALIAS).filter(periodic_task_name=schedule)
    results = [json.loads(r.result or "null") for r in rows]
    return len(results), sum(1 for r in results if not (isinstance(r, dict) and "skipped" in r))


def spacing(schedule: str) -> tuple[int, int]:
    """(runs closer than half a slot to the previous one, slots missed between runs) of one schedule."""
    runs = [r for r in observe.dispatch_runs(schedule) if r.status != "skipped"]
    times = sorted(getattr(r, "tick_at", None) or r.slot for r in runs)
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    doubled = sum(1 for gap in gaps if gap < SLOT_SECONDS / 2)
    missed = sum(round(gap / SLOT_SECONDS) - 1 for gap in gaps if gap > SLOT_SECONDS * 1.5)
    return doubled, missed


@ON_BOTH_BROKERS
def test_two_beats_for_four_slots_run_every_periodic_task_once_per_slot(stack) -> None:
    observe.seed_crypto(3)
    make_schedules()
    stack.start_worker()
    beats = [stack.start_beat("a"), stack.start_beat("b")]
    deadline = time.monotonic() + SLOT_SECONDS * TICKS + 60
    while time.monotonic() < deadline and min(len(tick_times(b, s)) for b in beats for s in SCHEDULES) < TICKS:
        time.sleep(0.3)
    for beat in beats:
        stack.stop_process(beat)
    stopped = time.monotonic()
    sent = {s: [tick_times(b, s) for b in beats] for s in SCHEDULES}

    def drained() -> bool:
        runs_open = any(r.status == "running" for s in SCHEDULES for r in observe.dispatch_runs(s))
        return not runs_open and all(worked(s)[0] >= sum(map(len, sent[s])) for s in SCHEDULES)

    recovery = observe.wait_recovered(drained, stopped, 60, 90)
    expected: set[str] = set()
    stored: set[str] = set()
    extra = 0
    findings = []
    for schedule, per_beat in sent.items():
        wanted = cycles([t for times in per_beat for t in times])
        received, did_work = worked(schedule)
        doubled, missed = spacing(schedule)
        runs = [r for r in observe.dispatch_runs(schedule) if r.status != "skipped"]
        # Work done without a run of its own is as much a duplicate as two runs in one cycle.
        unclaimed = max(0, did_work - len(runs))
        extra += doubled + unclaimed
        expected |= {f"{schedule}#{i}" for i in range(wanted)}
        stored |= {f"{schedule}#{i}" for i in range(min(wanted, did_work - doubled - unclaimed))}
        findings.append(
            Finding(
                f"{schedule}: once per cycle",
                doubled == unclaimed == missed == 0,
                f"ticks {[len(t) for t in per_beat]} in {wanted} cycles; {did_work} of {received} did work "
                f"in {len(runs)} runs; {doubled} doubled, {unclaimed} unclaimed, {missed} cycles missed",
            )
        )
    findings.append(
        Finding("both beats ticked", min(len(t) for v in sent.values() for t in v) >= TICKS, "each schedule")
    )
    facts = observe.log_facts(stack.logs())
    history = History(
        scenario=f"two beats, {len(SCHEDULES)} schedules, {SLOT_SECONDS} s slots",
        expected=frozenset(expected),
        stored=frozenset(stored),
        recovery_bound=60,
        recovery_seconds=recovery,
        duplicated_rows=extra,
        deliveries=facts.deliveries,
        retries=facts.retries,
        dead_letters=observe.dead_letters(stack),
        findings=tuple(findings),
    )
    verdict = judge(history, stack)
    assert verdict.ok, explain(verdict, stack)
