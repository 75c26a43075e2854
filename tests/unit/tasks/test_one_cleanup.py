"""One cleanup, one setting: maintenance.cleanup and RETENTION_TASK_RESULTS_DAYS, no celery.backend_cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from django_celery_results.models import TaskResult

from backend.core.celery import app
from backend.tasks.maintenance import cleanup
from backend.tasks.schedules import CELERY_BACKEND_CLEANUP, SCHEDULES, sync_schedules

pytestmark = pytest.mark.django_db


def backend_cleanup_row() -> PeriodicTask:
    """The row django-celery-beat's scheduler writes for Celery's built-in cleanup."""
    daily, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4", timezone="UTC")
    return PeriodicTask.objects.create(name=CELERY_BACKEND_CLEANUP, task=CELERY_BACKEND_CLEANUP, crontab=daily)


# The scheduler closes "old" connections, which includes a test's open transaction: commit for real.
@pytest.mark.django_db(transaction=True)
def test_beat_adds_no_builtin_cleanup_entry() -> None:
    assert app.conf.result_expires is None
    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.install_default_entries({})
    assert not PeriodicTask.objects.filter(task=CELERY_BACKEND_CLEANUP).exists()


@pytest.mark.django_db(transaction=True)
def test_beat_would_add_it_if_results_expired_on_their_own() -> None:
    # The control: the setting, not luck, is what keeps the row away.
    app.conf.result_expires = timedelta(days=7)
    try:
        DatabaseScheduler(app=app, lazy=True).install_default_entries({})
    finally:
        app.conf.result_expires = None
    assert PeriodicTask.objects.filter(task=CELERY_BACKEND_CLEANUP).exists()


def test_sync_removes_an_existing_builtin_cleanup_row(capsys) -> None:
    backend_cleanup_row()
    call_command("sync_schedules")
    assert not PeriodicTask.objects.filter(task=CELERY_BACKEND_CLEANUP).exists()
    assert f"removed {CELERY_BACKEND_CLEANUP}" in capsys.readouterr().out
    assert sync_schedules().removed == ()  # nothing left to remove the second time


def test_maintenance_cleanup_is_the_one_scheduled_cleanup() -> None:
    sync_schedules()
    cleanups = PeriodicTask.objects.filter(task__in=["maintenance.cleanup", CELERY_BACKEND_CLEANUP])
    assert list(cleanups.values_list("task", flat=True)) == ["maintenance.cleanup"]
    assert sum(entry.task == "maintenance.cleanup" for entry in SCHEDULES) == 1


def test_task_results_follow_retention_task_results_days(settings) -> None:
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "task_results": 2}
    for task_id, age_days in (("three-days", 3), ("one-day", 1)):
        TaskResult.objects.create(task_id=task_id, status="SUCCESS")
        TaskResult.objects.filter(task_id=task_id).update(date_done=timezone.now() - timedelta(days=age_days))
    assert cleanup()["task_results"] == 1
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["one-day"]
