"""Schedules live in the database, are synced idempotently and keep an operator's edits."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from backend.tasks.schedules import SCHEDULES, sync_schedules

pytestmark = pytest.mark.django_db


def test_sync_creates_one_row_per_schedule() -> None:
    result = sync_schedules()
    assert sorted(result.created) == sorted(entry.name for entry in SCHEDULES)
    rows = {row.name: row for row in PeriodicTask.objects.filter(name__in=result.created)}
    crypto = rows["quotes: crypto"]
    assert crypto.task == "quotes.dispatch"
    assert json.loads(crypto.kwargs) == {"asset_class": "crypto"}
    assert crypto.interval.every == 120
    assert crypto.queue == "high"


def test_a_second_sync_changes_nothing() -> None:
    sync_schedules()
    again = sync_schedules()
    assert again.created == () and again.updated == ()
    assert PeriodicTask.objects.filter(name__in=[e.name for e in SCHEDULES]).count() == len(SCHEDULES)


def test_sync_keeps_an_operators_interval_and_pause() -> None:
    sync_schedules()
    every_ten = IntervalSchedule.objects.create(every=600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="quotes: stock").update(interval=every_ten, enabled=False)
    sync_schedules()
    row = PeriodicTask.objects.get(name="quotes: stock")
    assert row.interval.every == 600
    assert row.enabled is False


def test_sync_repairs_a_row_pointing_at_the_wrong_task() -> None:
    sync_schedules()
    PeriodicTask.objects.filter(name="quotes: crypto").update(task="tasks.celery_tasks.fetch", kwargs="{}")
    result = sync_schedules()
    assert result.updated == ("quotes: crypto",)
    assert PeriodicTask.objects.get(name="quotes: crypto").task == "quotes.dispatch"


def test_a_new_schedule_is_due_at_beats_first_tick() -> None:
    sync_schedules()
    row = PeriodicTask.objects.get(name="quotes: crypto")
    assert row.schedule.is_due(row.last_run_at).is_due


def test_the_command_reports_what_it_did(capsys) -> None:
    call_command("sync_schedules")
    assert f"{len(SCHEDULES)} created" in capsys.readouterr().out


def test_every_synced_row_is_described() -> None:
    sync_schedules()
    for entry in SCHEDULES:
        assert entry.description, entry.name
        assert PeriodicTask.objects.get(name=entry.name).description == entry.description


def test_sync_keeps_an_operators_description_and_fills_a_blank_one() -> None:
    sync_schedules()
    PeriodicTask.objects.filter(name="news").update(description="Paused during the vendor migration - ops")
    PeriodicTask.objects.filter(name="quotes: stock").update(description="")
    result = sync_schedules()
    assert PeriodicTask.objects.get(name="news").description == "Paused during the vendor migration - ops"
    stock = next(entry for entry in SCHEDULES if entry.name == "quotes: stock")
    assert PeriodicTask.objects.get(name="quotes: stock").description == stock.description
    assert result.updated == ("quotes: stock",)
