"""/health/ready reports the real database, broker, worker, beat heartbeat and freshness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.tasks.runs import Heartbeat
from backend.tasks.tasks import dispatch_quotes, heartbeat

pytestmark = pytest.mark.integration


def checks(response) -> dict[str, dict]:
    return {c["name"]: c for c in response.json()["checks"]}


def test_ready_when_a_worker_serves_every_queue_and_beat_and_data_are_fresh(live_worker, make_asset, client) -> None:
    make_asset("AAPL")
    make_asset("BTC", "crypto")
    for asset_class in ("stock", "crypto"):
        dispatch_quotes.delay(asset_class).get(timeout=60)
    heartbeat.delay().get(timeout=60)  # what beat sends every minute
    response = client.get("/health/ready")
    assert response.status_code == 200, response.json()
    assert all(c["ok"] for c in response.json()["checks"])
    assert checks(response)["workers"]["detail"]["queues_without_worker"] == []


def test_not_ready_when_beat_has_gone_quiet(live_worker, client) -> None:
    heartbeat.delay().get(timeout=60)
    Heartbeat.objects.filter(component="beat").update(last_seen=timezone.now() - timedelta(minutes=10))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert checks(response)["beat"]["ok"] is False
    assert checks(response)["database"]["ok"] is True and checks(response)["broker"]["ok"] is True


def test_liveness_needs_nothing_but_the_web_process(client) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
