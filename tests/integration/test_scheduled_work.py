"""The non-provider task types on a real worker, and beat following schedule edits live."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from backend.market.models import Asset, IndicatorSnapshot, PriceBar
from backend.tasks.dispatching import slot_start
from backend.tasks.models import DispatchRun, Heartbeat
from backend.tasks.tasks import cleanup, dispatch_indicators, heartbeat
from tests.fixtures.waiting import wait_until
from tests.fixtures.worker import start_beat, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


def test_the_fan_out_computes_indicators_for_every_active_asset_and_drops_a_deactivated_one(
    live_worker, make_asset
) -> None:
    assets = [make_asset(f"T{i:02d}", "crypto" if i % 2 else "stock") for i in range(50)]
    # Creating an asset queues its backfill; wait until every asset has enough history.
    wait_until(
        lambda: PriceBar.objects.values("asset").annotate(n=Count("id")).filter(n__gte=34).count() == 50, timeout=120
    )

    first = dispatch_indicators.delay().get(timeout=60)
    wait_until(lambda: IndicatorSnapshot.objects.values("asset").distinct().count() == 50)
    assert first["assets"] == 50
    run = DispatchRun.objects.get(pk=first["run"])
    wait_until(lambda: DispatchRun.objects.get(pk=run.pk).status == "done")

    Asset.objects.filter(pk=assets[7].pk).update(is_active=False)
    since = timezone.now()
    second = dispatch_indicators.delay().get(timeout=60)
    wait_until(lambda: IndicatorSnapshot.objects.filter(computed_at__gte=since).count() == 49)
    assert second["assets"] == 49
    assert not IndicatorSnapshot.objects.filter(computed_at__gte=since, asset=assets[7]).exists()
    assert IndicatorSnapshot.objects.count() == 50  # upserts: the rerun added no rows
    done = DispatchRun.objects.get(pk=second["run"])
    wait_until(lambda: DispatchRun.objects.get(pk=done.pk).completeness == 100.0)


def test_cleanup_and_heartbeat_run_on_the_worker(live_worker, make_asset) -> None:
    DispatchRun.objects.create(schedule="old", slot=timezone.now() - timedelta(days=60))
    deleted = cleanup.delay().get(timeout=60)
    assert deleted["dispatch_runs"] == 1
    report = heartbeat.delay().get(timeout=60)
    assert report["component"] == "beat"
    assert Heartbeat.objects.filter(component="beat", last_seen__gte=timezone.now() - timedelta(minutes=1)).exists()


def test_beat_follows_a_schedule_edit_without_a_restart(live_worker) -> None:
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    row = PeriodicTask.objects.create(
        name="heartbeat (test)", task="maintenance.heartbeat", interval=every_two, queue="high", enabled=False
    )
    beat = start_beat("edit")
    try:
        time.sleep(5)
        assert "Sending due task heartbeat (test)" not in beat.log()
        row.enabled = True  # what saving the row in admin does: PeriodicTasks.changed is bumped
        row.save()
        wait_until(lambda: "Sending due task heartbeat (test)" in beat.log(), timeout=30)
    finally:
        stop_worker(beat)
    assert beat.process.returncode is not None


def test_run_selected_tasks_in_admin_runs_a_dispatcher_in_its_own_slot(live_worker, make_asset, admin_client) -> None:
    for symbol in ("BTC", "ETH"):
        make_asset(symbol, "crypto")
    every, _ = IntervalSchedule.objects.get_or_create(every=120, period=IntervalSchedule.SECONDS)
    row = PeriodicTask.objects.create(
        name="quotes: crypto (admin)",
        task="quotes.dispatch",
        kwargs='{"asset_class": "crypto"}',
        interval=every,
        queue="high",
        enabled=False,
    )
    # Beat's tick of this slot already ran: the operator's run-now must not be taken for a doubled tick.
    DispatchRun.objects.create(
        schedule=row.name, slot=slot_start(timezone.now(), 120), status=DispatchRun.Status.DONE, tick_at=timezone.now()
    )
    response = admin_client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "run_tasks", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "successfully run" in response.content.decode()
    wait_until(lambda: DispatchRun.objects.filter(schedule=row.name, tick_at__isnull=True).exists(), timeout=30)
    run = DispatchRun.objects.get(schedule=row.name, tick_at__isnull=True)
    assert run.status != DispatchRun.Status.SKIPPED, run.note
    wait_until(lambda: DispatchRun.objects.get(pk=run.pk).status == DispatchRun.Status.DONE)
    run.refresh_from_db()
    assert (run.planned, run.done) == (2, 2)
