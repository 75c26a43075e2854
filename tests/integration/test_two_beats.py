"""Two beat processes tick the same schedules; every slot of every periodic task runs once."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from backend.tasks.models import DispatchRun
from tests.fixtures.worker import report, start_beat, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]

SLOT_SECONDS = 3


def ticks(beat) -> int:
    """How many times ``beat`` sent the test schedule."""
    return beat.log().count("Sending due task quotes: crypto (test)")


def test_two_beats_for_five_ticks_dispatch_each_slot_once(live_worker, make_asset) -> None:
    for symbol in ("BTC", "ETH", "SOL"):
        make_asset(symbol, "crypto")
    log_offset = len(live_worker.log())
    every, _ = IntervalSchedule.objects.get_or_create(every=SLOT_SECONDS, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="quotes: crypto (test)",
        task="quotes.dispatch",
        kwargs=json.dumps({"asset_class": "crypto"}),
        interval=every,
        queue="high",
        last_run_at=timezone.now() - timedelta(seconds=SLOT_SECONDS),
    )
    # Not a fan-out: the heartbeat, too, must run once per slot whichever beat sent it.
    PeriodicTask.objects.create(
        name="heartbeat (test)",
        task="maintenance.heartbeat",
        interval=every,
        queue="high",
        last_run_at=timezone.now() - timedelta(seconds=SLOT_SECONDS),
    )
    beats = [start_beat("a"), start_beat("b")]
    try:
        # Five ticks each; a beat's start-up takes a second or two, so wait for the ticks, not the clock.
        deadline = time.monotonic() + SLOT_SECONDS * 5 + 30
        while time.monotonic() < deadline and min(ticks(b) for b in beats) < 5:
            time.sleep(0.3)
    finally:
        for beat in beats:
            stop_worker(beat)
    sent = [ticks(b) for b in beats]
    # Let the worker finish what the beats sent (every tick received) before counting.
    deadline = time.monotonic() + 30
    while TaskResult.objects.filter(task_name="quotes.dispatch").count() < sum(sent) and time.monotonic() < deadline:
        time.sleep(0.3)
    # ... and the fetches they fanned out: a run closes when its batches are accounted.
    while DispatchRun.objects.filter(status="running").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    runs = DispatchRun.objects.filter(schedule="quotes: crypto (test)").exclude(status="skipped")
    slots = list(runs.values_list("slot", flat=True))
    dispatches = TaskResult.objects.filter(task_name="quotes.dispatch").count()
    # Dispatched batches store no result row: count the fetches the worker received.
    fetches = sum(
        "Task quotes.fetch[" in line and line.endswith("] received")
        for line in live_worker.log()[log_offset:].splitlines()
    )

    assert min(sent) >= 5, sent  # both beats really ticked, five times or more each
    assert len(slots) == len(set(slots)) >= 5
    assert dispatches == sum(sent)  # every tick was received ...
    assert fetches == len(slots)  # ... and only one per slot fanned out (one batch of 3 assets each)
    heartbeats = DispatchRun.objects.filter(schedule="heartbeat (test)")
    heartbeat_slots = list(heartbeats.exclude(status="skipped").values_list("slot", flat=True))
    assert len(heartbeat_slots) == len(set(heartbeat_slots)) >= 5
    # Every doubled heartbeat tick left a skipped row with its reason.
    assert heartbeats.filter(status="skipped").count() >= 4
    assert all(note for note in heartbeats.filter(status="skipped").values_list("note", flat=True))
    report(
        f"two beats: {sum(sent)} ticks sent for {len(slots)} slots; {fetches} fan-outs; "
        f"heartbeat ran {len(heartbeat_slots)} times for {heartbeats.count()} ticks"
    )
