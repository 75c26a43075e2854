"""The seed's AAPL-only indicator entry and old task names are rewritten into the fan-out entries."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from backend.tasks.schedules import sync_schedules

pytestmark = pytest.mark.django_db


def legacy_row(name: str, task: str, kwargs: dict) -> PeriodicTask:
    hourly, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="*")
    return PeriodicTask.objects.create(name=name, task=task, crontab=hourly, kwargs=json.dumps(kwargs))


def test_the_aapl_only_indicator_entry_becomes_the_fan_out_entry() -> None:
    legacy_row(
        "calculate-indicators-every-hour",
        "tasks.celery_tasks.calculate_indicators_task",
        {"symbol": "AAPL", "period": 200},
    )
    result = sync_schedules()
    assert any("calculate-indicators-every-hour" in m for m in result.migrated)
    assert not PeriodicTask.objects.filter(task__contains="calculate_indicators_task").exists()
    row = PeriodicTask.objects.get(name="indicators: hourly")
    assert row.task == "indicators.dispatch"
    assert json.loads(row.kwargs) == {}
    assert "AAPL" not in row.kwargs + row.args


@pytest.mark.parametrize(
    ("task", "target"),
    [
        ("tasks.scheduler_tasks.fetch_crypto_prices_task", "quotes: crypto"),
        ("tasks.celery_tasks.fetch_yahoo_stocks_task", "quotes: stock"),
        ("tasks.scheduler_tasks.fetch_news_task", "news"),
        ("tasks.scheduler_tasks.health_check_task", "maintenance: heartbeat"),
    ],
)
def test_old_celery_and_dramatiq_task_names_are_rewritten(task: str, target: str) -> None:
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.create(name=f"legacy {task}", task=task, interval=every_minute, kwargs='{"symbols": ["BTC"]}')
    sync_schedules()
    assert not PeriodicTask.objects.filter(name=f"legacy {task}").exists()
    assert PeriodicTask.objects.filter(name=target).count() == 1
    assert "BTC" not in PeriodicTask.objects.get(name=target).kwargs


def test_a_legacy_row_next_to_an_existing_entry_is_removed_not_duplicated() -> None:
    sync_schedules()
    legacy_row("old", "tasks.celery_tasks.calculate_indicators_task", {"symbol": "AAPL"})
    sync_schedules()
    assert PeriodicTask.objects.filter(task="indicators.dispatch").count() == 1
    assert not PeriodicTask.objects.filter(name="old").exists()


def test_no_entry_carries_a_symbol() -> None:
    sync_schedules()
    for row in PeriodicTask.objects.exclude(name="celery.backend_cleanup"):
        assert "symbol" not in row.kwargs and row.args == "[]"
