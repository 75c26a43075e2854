"""Bad task input through a real worker: one clear error naming the value, escaped; nothing else changes.

A replayed dead letter re-sends its stored arguments, so it passes through the same check.
"""

from __future__ import annotations

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from django.utils import timezone

from backend import deadletters
from backend.deadletters.models import DeadLetter
from backend.market.models import Quote
from backend.tasks.tasks import backfill_history, fetch_quotes

pytestmark = pytest.mark.integration


def _refusal(result) -> str:
    """The error text of a task that must fail (never succeed, never hang in retries)."""
    try:
        value = result.get(timeout=30)
    except CeleryTimeout:
        pytest.fail("the task did not finish: a refusal must not be retried")
    except ValueError as exc:
        return str(exc)
    pytest.fail(f"the task succeeded with {value!r}")


@pytest.mark.parametrize("bad", ["AAPL\x00", "AAPL\r\nforged", "aapl"])
def test_a_direct_task_call_with_a_bad_symbol_is_refused(live_worker, make_asset, bad: str) -> None:
    make_asset("AAPL")
    fetch_error = _refusal(fetch_quotes.delay("stock", ["AAPL", bad]))
    backfill_error = _refusal(backfill_history.delay(bad))
    assert repr(bad) in fetch_error and repr(bad) in backfill_error  # repr escapes the control characters
    assert "'AAPL'," not in fetch_error  # the good symbol is not blamed
    assert not Quote.objects.exists()  # the good symbol of the refused batch was not fetched either


def test_a_replayed_dead_letter_with_a_bad_symbol_is_refused_by_the_task(live_worker, make_asset) -> None:
    make_asset("AAPL")
    now = timezone.now()
    letter = DeadLetter.objects.create(
        task_id="bad-input-1",
        task_name="quotes.fetch",
        args=["stock", ["AAPL", "AAPL\r\nforged"]],
        kwargs={},
        first_failure_at=now,
        last_failure_at=now,
    )
    new_id = deadletters.replay(letter, actor="test")
    error = _refusal(fetch_quotes.AsyncResult(new_id))
    assert "'AAPL\\r\\nforged'" in error
    assert not Quote.objects.exists()
