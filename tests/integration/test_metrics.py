"""/metrics exposes the platform's state, read from the stores every process shares."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backend.deadletters.models import DeadLetter
from backend.market.models import Quote
from backend.tasks.tasks import dispatch_quotes, heartbeat
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


def scrape(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    return families


@pytest.mark.both_brokers  # queue depths and the broker check read RabbitMQ too
def test_metrics_report_tasks_dead_letters_freshness_queues_and_breakers(live_worker, make_asset, client) -> None:
    make_asset("AAPL")
    dispatch_quotes.delay("stock").get(timeout=60)
    # The fetch runs after its dispatcher returned (medium/4 on a closed day): wait for it whatever the day.
    assert wait_for(lambda: Quote.objects.filter(asset__symbol="AAPL").exists())
    heartbeat.delay().get(timeout=60)
    now = timezone.now()
    DeadLetter.objects.create(task_id="x", task_name="quotes.fetch", first_failure_at=now, last_failure_at=now)

    metrics = scrape(client)

    assert metrics["financehub_task_results"][(("state", "SUCCESS"), ("task", "quotes.dispatch"))] >= 1
    assert metrics["financehub_dead_letters"][(("state", "open"),)] == 1
    assert metrics["financehub_dead_letters"][(("state", "resolved"),)] == 0
    assert metrics["financehub_assets"][(("asset_class", "stock"),)] == 1
    assert metrics["financehub_stale_assets"][(("asset_class", "stock"),)] == 0
    assert metrics["financehub_fresh_share"][(("asset_class", "stock"),)] == 1.0
    # Outside the session the fake server prices at the last close: old, yet fresh by the calendar.
    assert metrics["financehub_asset_age_seconds"][(("asset_class", "stock"), ("quantile", "1"))] >= 0
    assert 0 <= metrics["financehub_beat_heartbeat_age_seconds"][()] < 120
    assert set(metrics["financehub_queue_depth"]) == {(("queue", q),) for q in ("high", "medium", "low")}
    assert metrics["financehub_provider_breaker_state"][(("provider", "yahoo"),)] == 0
    assert metrics["financehub_dispatch_completeness_percent"]
