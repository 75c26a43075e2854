"""Slots come from the time beat sent the tick; every periodic task claims its slot once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine

from backend.tasks import tasks
from backend.tasks.dispatching import record_outcome, run_once_per_tick
from backend.tasks.models import DispatchRun
from backend.tasks.routing import Decision, Route, RoutedBatch
from backend.tasks.ticks import BEAT_SENT_HEADER, origin_of, stamp_beat_ticks
from tests.fixtures.ticks import periodic_task, run_dispatch, tick_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

# 12:01:58 sits 2 s before the 12:02 boundary of 120-second slots.
SENT = datetime(2026, 11, 27, 12, 1, 58, tzinfo=UTC)


@pytest.fixture
def crypto_schedule() -> str:
    return periodic_task("quotes: crypto", 120)


def beat_request(task_id: str, schedule: str, sent: datetime | None) -> SimpleNamespace:
    headers = tick_headers(schedule, sent)
    return SimpleNamespace(id=task_id, headers=headers, **headers)


def test_beat_stamps_what_it_sends_and_nothing_else() -> None:
    beat = {"periodic_task_name": "news", "celery_beat_task": True}
    with time_machine.travel(SENT, tick=False):
        stamp_beat_ticks(headers=beat)
    assert beat[BEAT_SENT_HEADER] == SENT.timestamp()
    admin = {"periodic_task_name": "news"}  # admin's "Run selected tasks" sends no beat flag
    stamp_beat_ticks(headers=admin)
    assert BEAT_SENT_HEADER not in admin
    retried = {"celery_beat_task": True, BEAT_SENT_HEADER: 1.0}  # a retry keeps the original stamp
    stamp_beat_ticks(headers=retried)
    assert retried[BEAT_SENT_HEADER] == 1.0


def test_origin_tells_beat_ticks_operator_runs_and_code_apart() -> None:
    assert origin_of(beat_request("a", "news", SENT)) == origin_of(beat_request("b", "news", SENT))
    assert origin_of(beat_request("a", "news", SENT)).tick == SENT
    operator = SimpleNamespace(id="c", headers={"periodic_task_name": "news"}, periodic_task_name="news")
    assert origin_of(operator).schedule == "news" and not origin_of(operator).from_beat
    assert origin_of(SimpleNamespace(id="d", headers=None)).schedule is None


def test_a_tick_delayed_in_the_queue_keeps_its_own_slot_and_the_next_tick_still_runs(
    crypto_schedule, monkeypatch
) -> None:
    def fetch_at_once(args, kwargs, **options):  # the batch runs and reports at once
        record_outcome(kwargs["run_id"], kwargs["batch"], done=args[1])

    monkeypatch.setattr(tasks.fetch_quotes, "apply_async", fetch_at_once)
    one_batch = [RoutedBatch(Decision(Route("high", 2), "crypto always open, 1 calm -> high/2"), ("BTC",))]
    monkeypatch.setattr(tasks.quote_plan, "plan_quote_routes", lambda asset_class, size, **_: one_batch)

    def run(task_id: str, tick: datetime) -> dict:
        return run_dispatch("crypto", task_id, tick_headers(crypto_schedule, tick))

    # The 12:01:58 tick waits in a backed-up queue and reaches a worker at 12:02:30, after the
    # 12:02 boundary; the next tick (sent 12:03:58) is on time. Both slots must run.
    with time_machine.travel(datetime(2026, 11, 27, 12, 2, 30, tzinfo=UTC), tick=False):
        late = run("late", SENT)
    with time_machine.travel(SENT + timedelta(seconds=120, milliseconds=50), tick=False):
        on_time = run("on-time", SENT + timedelta(seconds=120))
    assert "skipped" not in late and "skipped" not in on_time
    slots = sorted(DispatchRun.objects.exclude(status="skipped").values_list("slot", flat=True))
    assert slots == [datetime(2026, 11, 27, 12, 0, tzinfo=UTC), datetime(2026, 11, 27, 12, 2, tzinfo=UTC)]


def test_two_ticks_of_one_slot_straddling_a_boundary_on_the_worker_clock_make_one_run(crypto_schedule) -> None:
    # Two beats send the 12:00 slot's tick at 12:01:58 and 12:01:59.5; the second is taken at 12:02:01.
    with time_machine.travel(SENT, tick=False):
        first = run_once_per_tick(beat_request("a", crypto_schedule, SENT), name="t", work=lambda: "ran")
    with time_machine.travel(SENT + timedelta(seconds=3), tick=False):
        second = run_once_per_tick(
            beat_request("b", crypto_schedule, SENT + timedelta(seconds=1.5)), name="t", work=lambda: "ran"
        )
    assert first == "ran"
    assert second == {"schedule": crypto_schedule, "skipped": "slot taken"}


def test_ticks_of_two_beats_straddling_a_slot_boundary_make_one_run() -> None:
    # Beat a sends at 12:01:58 (60 s slot 12:01), beat b at 12:02:00 (slot 12:02): one cycle, one run.
    results = []
    for task_id, sent in (("beat-a", SENT), ("beat-b", SENT + timedelta(seconds=2))):
        with time_machine.travel(sent, tick=False):
            results.append(
                run_once_per_tick(beat_request(task_id, "news", sent), name="news.fetch", work=lambda: "ran")
            )
    assert results == ["ran", {"schedule": "news", "skipped": "doubled tick"}]


def test_every_periodic_task_claims_its_slot_once_whichever_beat_sent_it() -> None:
    calls: list[str] = []
    for task_id, sent in (("beat-a", SENT - timedelta(seconds=2)), ("beat-b", SENT)):
        with time_machine.travel(sent, tick=False):
            run_once_per_tick(
                beat_request(task_id, "maintenance: heartbeat", sent),
                name="maintenance.heartbeat",
                work=lambda: calls.append("ran"),
            )
    assert calls == ["ran"]
    run = DispatchRun.objects.exclude(status="skipped").get()
    assert (run.status, run.planned, run.done) == ("done", 1, 1)
    assert DispatchRun.objects.get(status="skipped").note.startswith("slot taken")


def test_a_periodic_task_called_without_a_schedule_just_runs() -> None:
    assert run_once_per_tick(SimpleNamespace(id="x", headers=None), name="n", work=lambda: 7) == 7
    assert DispatchRun.objects.count() == 0
