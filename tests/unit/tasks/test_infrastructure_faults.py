"""Every task waits out database, Redis and broker faults; result writes never fail a task; recovery bounds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.exceptions
from celery.app.task import Task
from celery.exceptions import Ignore, Reject, Retry
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django_celery_results.backends.database import DatabaseBackend
from kombu.exceptions import OperationalError as BrokerOperationalError

from backend.core.celery import app
from backend.tasks import policy, tasks
from backend.tasks.results import OutageTolerantDatabaseBackend

EVERY_TASK = (
    ("quotes.dispatch", ("crypto",)),
    ("quotes.fetch", ("crypto", ["BTC"])),
    ("news.fetch", ()),
    ("indicators.dispatch", ()),
    ("indicators.compute", ([1, 2],)),
    ("history.backfill", ("AAPL",)),
    ("maintenance.cleanup", ()),
    ("maintenance.heartbeat", ()),
)
FAULTS = (
    OperationalError("database is locked"),
    InterfaceError("connection already closed"),
    redis.exceptions.ConnectionError("Connection reset by peer"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    BrokerOperationalError("Error 111 connecting to redis"),
)


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    """What the retries would send (never reaches the broker)."""
    sent: list[dict] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **options: sent.append(options))
    return sent


def run_as_worker(task, args, retries: int = 0):
    """Call ``task`` the way a worker does (not eagerly, not directly) with the given retry count."""
    task.push_request(id=f"test-{task.name}", retries=retries, called_directly=False, is_eager=False, headers={})
    try:
        return task(*args)
    finally:
        task.pop_request()


@pytest.mark.parametrize(("name", "args"), EVERY_TASK)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda e: type(e).__name__)
def test_every_task_retries_an_infrastructure_fault_with_backoff(monkeypatch, published, name, args, fault) -> None:
    task = app.tasks[name]
    monkeypatch.setattr(task, "run", lambda *a, **k: (_ for _ in ()).throw(fault))
    with pytest.raises(Retry):
        run_as_worker(task, args)
    (options,) = published
    assert settings.TASK_RETRY_DELAY_FLOOR <= options["countdown"] <= settings.TASK_RETRY_BACKOFF_MAX
    assert options["retries"] == 1


def test_an_outage_longer_than_the_retry_budget_fails_the_task(monkeypatch, published) -> None:
    task = tasks.heartbeat
    monkeypatch.setattr(task, "run", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    with pytest.raises(OperationalError):
        run_as_worker(task, (), retries=settings.TASK_INFRA_MAX_RETRIES)
    assert published == []


def test_a_retry_that_cannot_be_sent_puts_the_message_back(monkeypatch) -> None:
    def broker_down(self, args=None, kwargs=None, **options):
        raise BrokerOperationalError("Error 111 connecting to redis")

    monkeypatch.setattr(Task, "apply_async", broker_down)
    monkeypatch.setattr(policy.time, "sleep", lambda seconds: None)
    task = tasks.heartbeat
    monkeypatch.setattr(task, "run", lambda *a, **k: (_ for _ in ()).throw(OperationalError("down")))
    with pytest.raises(Reject) as rejected:
        run_as_worker(task, ())
    assert rejected.value.requeue is True


def test_backoff_grows_with_full_jitter_between_floor_and_cap() -> None:
    draws = [policy.infrastructure_backoff(n, floor=2, cap=25) for n in range(12) for _ in range(20)]
    assert min(draws) >= 2 and max(draws) <= 25
    assert max(policy.infrastructure_backoff(0, floor=2, cap=25) for _ in range(50)) <= 2
    assert len({round(d, 3) for d in draws}) > 50  # jittered, not a fixed ladder


@pytest.mark.parametrize("state", ["STARTED", "SUCCESS", "FAILURE", "RETRY"])
def test_a_state_write_the_database_refuses_is_logged_not_raised(monkeypatch, caplog, state) -> None:
    def refuse(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(DatabaseBackend, "_store_result", refuse)
    backend = OutageTolerantDatabaseBackend(app=app)
    backend.store_result("task-1", {"ok": True}, state)
    assert "not stored, database unavailable" in caplog.text


def test_no_started_row_is_written_before_the_task_body() -> None:
    assert settings.CELERY_TASK_TRACK_STARTED is False
    assert app.conf.result_backend == "backend.tasks.results:OutageTolerantDatabaseBackend"


@pytest.mark.skipif(settings.USES_FILESYSTEM_BROKER, reason="the visibility timeout is a Redis broker setting")
def test_a_killed_workers_messages_come_back_within_two_minutes_on_redis() -> None:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    sweep = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    assert options["visibility_timeout"] + sweep <= 120
    # ... and no message is held longer than the timeout: hard limit + longest countdown fit below it.
    assert settings.CELERY_TASK_TIME_LIMIT + settings.TASK_RETRY_BACKOFF_MAX < options["visibility_timeout"]


def test_a_retry_countdown_or_eta_never_exceeds_the_cap(monkeypatch, published) -> None:
    task = tasks.fetch_quotes
    task.push_request(id="t", retries=0, called_directly=False, is_eager=False, args=("crypto", ["BTC"]), kwargs={})
    try:
        with pytest.raises(Retry):
            task.retry(countdown=3600)
        with pytest.raises(Retry):
            task.retry(eta=datetime.now(tz=UTC) + timedelta(hours=1))
    finally:
        task.pop_request()
    assert [options["countdown"] for options in published] == [settings.TASK_RETRY_BACKOFF_MAX] * 2
    assert all(options.get("eta") is None for options in published)


class Throttled(Exception):
    retry_after = 120.0


def test_a_long_retry_after_is_honoured_in_hops_no_longer_than_the_cap(monkeypatch, published) -> None:
    task = tasks.fetch_quotes
    task.push_request(id="t", retries=0, called_directly=False, is_eager=False, args=("crypto", ["BTC"]), kwargs={})
    try:
        with pytest.raises(Retry):
            task.retry(exc=Throttled(), countdown=4)
    finally:
        task.pop_request()
    (options,) = published
    assert options["countdown"] == settings.TASK_RETRY_BACKOFF_MAX
    not_before = options["headers"][policy.NOT_BEFORE_HEADER]
    assert 119 < not_before - time.time() <= 120


def test_a_delivery_before_its_time_hops_on_without_running(monkeypatch, published) -> None:
    task = tasks.heartbeat
    ran: list[bool] = []
    monkeypatch.setattr(task, "run", lambda *a, **k: ran.append(True))
    headers = {policy.NOT_BEFORE_HEADER: time.time() + 60}
    task.push_request(id="t", retries=1, called_directly=False, is_eager=False, headers=headers, args=(), kwargs={})
    try:
        with pytest.raises(Ignore):
            task()
    finally:
        task.pop_request()
    assert ran == []
    (options,) = published
    assert options["countdown"] <= settings.TASK_RETRY_BACKOFF_MAX
    assert options["retries"] == 1 and options["task_id"] == "t"  # the same message, not a new retry
    assert options["headers"][policy.NOT_BEFORE_HEADER] == headers[policy.NOT_BEFORE_HEADER]
