"""Retention removes only what is past its time; the heartbeat records liveness and freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from backend.deadletters.models import DeadLetter
from backend.market.models import PriceBar, Quote
from backend.tasks.maintenance import cleanup, heartbeat
from backend.tasks.models import DispatchRun, Heartbeat

pytestmark = pytest.mark.django_db


def bar(asset, interval: str, age_days: float) -> PriceBar:
    return PriceBar.objects.create(
        asset=asset,
        interval=interval,
        timestamp=timezone.now() - timedelta(days=age_days),
        open=Decimal(1),
        high=Decimal(1),
        low=Decimal(1),
        close=Decimal(1),
        volume=Decimal(1),
        source="t",
    )


def dead_letter(task_id: str, state: str, age_days: float) -> DeadLetter:
    when = timezone.now() - timedelta(days=age_days)
    return DeadLetter.objects.create(
        task_id=task_id, task_name="quotes.fetch", state=state, first_failure_at=when, last_failure_at=when
    )


def test_cleanup_applies_each_retention_and_keeps_the_rest(make_asset, settings) -> None:
    asset = make_asset("AAPL")
    old_5m, new_5m, old_1d = bar(asset, "5m", 8), bar(asset, "5m", 1), bar(asset, "1d", 400)
    old = TaskResult.objects.create(task_id="old", status="SUCCESS")
    TaskResult.objects.filter(pk=old.pk).update(date_done=timezone.now() - timedelta(days=8))
    TaskResult.objects.create(task_id="new", status="SUCCESS")
    DispatchRun.objects.create(schedule="s", slot=timezone.now() - timedelta(days=20))
    dead_letter("resolved-old", "resolved", 40)
    dead_letter("open-old", "open", 40)
    dead_letter("discarded-new", "discarded", 1)

    deleted = cleanup()

    assert deleted["bars_5m"] == 1 and deleted["bars_1d"] == 0
    assert set(PriceBar.objects.values_list("pk", flat=True)) == {new_5m.pk, old_1d.pk}
    assert not PriceBar.objects.filter(pk=old_5m.pk).exists()
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["new"]
    assert DispatchRun.objects.count() == 0
    assert set(DeadLetter.objects.values_list("task_id", flat=True)) == {"open-old", "discarded-new"}


# A Tuesday, 10:00 in New York: the stock market is in session.
IN_SESSION = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_heartbeat_records_liveness_and_flags_a_stale_class(make_asset) -> None:
    now = IN_SESSION
    btc, aapl = make_asset("BTC", "crypto"), make_asset("AAPL")
    # Age counts from the provider's as-of time, not from when we fetched.
    Quote.objects.create(asset=btc, price=1, as_of=now - timedelta(seconds=30), source="t", fetched_at=now)
    Quote.objects.create(asset=aapl, price=1, as_of=now - timedelta(hours=2), source="t", fetched_at=now)

    report = heartbeat(now=now)

    assert report["freshness"]["classes"]["crypto"]["fresh"] is True
    assert report["freshness"]["classes"]["stock"]["fresh"] is False
    assert [s["symbol"] for s in report["freshness"]["stalest"]] == ["AAPL"]
    row = Heartbeat.objects.get(component="beat")
    assert row.last_seen == now and row.detail["classes"]["stock"]["fresh"] is False


def test_freshness_follows_the_schedule_interval_an_operator_set(make_asset) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from backend.tasks.schedules import sync_schedules

    sync_schedules()
    now = timezone.now()
    btc = make_asset("BTC", "crypto")
    Quote.objects.create(asset=btc, price=1, as_of=now - timedelta(seconds=300), source="t", fetched_at=now)
    crypto = heartbeat(now=now)["freshness"]["classes"]["crypto"]
    assert (crypto["stale"], crypto["target_seconds"], crypto["age_quantiles"]["1"]) == (1, 240.0, 300.0)
    every_ten, _ = IntervalSchedule.objects.get_or_create(every=600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="quotes: crypto").update(interval=every_ten)
    assert heartbeat(now=now)["freshness"]["classes"]["crypto"]["fresh"] is True


def test_a_stock_class_priced_at_the_last_close_is_fresh_outside_the_session(make_asset) -> None:
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    friday_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # the day after Thanksgiving closes at 13:00
    aapl = make_asset("AAPL", exchange="XNYS")
    # The closing snapshot: fetched once the close had settled, priced at the close.
    snapshot = friday_close + timedelta(minutes=3)
    Quote.objects.create(asset=aapl, price=1, as_of=friday_close, source="t", fetched_at=snapshot)

    assert heartbeat(now=saturday)["freshness"]["classes"]["stock"]["fresh"] is True
    Quote.objects.filter(asset=aapl).update(as_of=friday_close - timedelta(hours=5))
    assert heartbeat(now=saturday)["freshness"]["classes"]["stock"]["fresh"] is False


def test_a_stock_quote_fetched_before_the_close_settled_is_stale_on_a_closed_day(make_asset) -> None:
    saturday = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    friday_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    aapl = make_asset("AAPL", exchange="XNYS")
    # The stack stopped a minute before the close: the price is recent for Friday, not Friday's close.
    Quote.objects.create(asset=aapl, price=1, as_of=friday_close, source="t", fetched_at=friday_close)

    result = heartbeat(now=saturday)["freshness"]

    assert result["classes"]["stock"]["fresh"] is False
    assert [(s["symbol"], s["why"]) for s in result["stalest"]] == [("AAPL", "last close not stored yet")]
