"""No message is held unacknowledged up to RabbitMQ's consumer_timeout (30 min by default).

A worker holds a retry's message through its countdown, may wait for a free pool process, then runs
it. RabbitMQ closes the channel of a consumer holding a delivery past consumer_timeout, and every
message that channel held is delivered again. Two things keep the hold well under it: start-up
refuses settings whose longest hold reaches half the timeout, and a longer wait (a provider's
Retry-After) is re-sent in hops of at most the retry cap instead of waiting in one held message.
"""

from __future__ import annotations

import time

import pytest
from celery.app.task import Task
from celery.exceptions import Retry
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from backend.core.setting_checks import check_consumer_timeout
from backend.tasks import policy, tasks

DEFAULTS = {
    "USES_AMQP_BROKER": True,
    "RABBITMQ_CONSUMER_TIMEOUT": 1800,
    "CELERY_TASK_TIME_LIMIT": 75,
    "TASK_RETRY_BACKOFF_MAX": 25,
    "VISIBILITY_MARGIN_SECONDS": 5,
}


def test_the_defaults_hold_a_message_at_most_a_tenth_of_the_timeout() -> None:
    check_consumer_timeout(DEFAULTS)
    longest_hold = DEFAULTS["TASK_RETRY_BACKOFF_MAX"] + 2 * DEFAULTS["CELERY_TASK_TIME_LIMIT"] + 5
    assert longest_hold * 10 <= DEFAULTS["RABBITMQ_CONSUMER_TIMEOUT"]
    # The running settings are those defaults (the test run may use either broker).
    assert settings.TASK_RETRY_BACKOFF_MAX + 2 * settings.CELERY_TASK_TIME_LIMIT + 5 <= 180
    assert settings.RABBITMQ_CONSUMER_TIMEOUT == 1800


@pytest.mark.parametrize(
    "changed",
    [
        {"TASK_RETRY_BACKOFF_MAX": 900},  # a countdown of 15 minutes held in the worker
        {"CELERY_TASK_TIME_LIMIT": 600},  # waiting for a pool process, then running, 10 minutes each
        {"RABBITMQ_CONSUMER_TIMEOUT": 300},  # a broker configured with a 5-minute timeout
    ],
)
def test_start_up_refuses_a_hold_that_reaches_half_the_consumer_timeout(changed: dict) -> None:
    with pytest.raises(ImproperlyConfigured, match="RABBITMQ_CONSUMER_TIMEOUT"):
        check_consumer_timeout({**DEFAULTS, **changed})


def test_other_brokers_have_no_consumer_timeout() -> None:
    check_consumer_timeout({**DEFAULTS, "USES_AMQP_BROKER": False, "RABBITMQ_CONSUMER_TIMEOUT": 1})


class ThrottledForAnHour(Exception):
    retry_after = 2 * 1800.0  # twice RabbitMQ's default consumer_timeout


def test_a_retry_after_longer_than_the_consumer_timeout_hops_in_steps_of_the_cap(monkeypatch) -> None:
    sent: list[dict] = []
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **options: sent.append(options))
    monkeypatch.setattr(settings, "TASK_RETRY_AFTER_MAX", 4 * 3600)
    task = tasks.fetch_quotes
    task.push_request(id="t", retries=0, called_directly=False, is_eager=False, args=("crypto", ["BTC"]), kwargs={})
    try:
        with pytest.raises(Retry):
            task.retry(exc=ThrottledForAnHour(), countdown=4)
    finally:
        task.pop_request()
    (options,) = sent
    # Held at most the cap; the hour is carried in the header and waited out hop by hop.
    assert options["countdown"] == settings.TASK_RETRY_BACKOFF_MAX < settings.RABBITMQ_CONSUMER_TIMEOUT / 2
    not_before = options["headers"][policy.NOT_BEFORE_HEADER]
    assert 3599 < not_before - time.time() <= 3600
