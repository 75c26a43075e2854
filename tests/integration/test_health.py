"""/health/ready reports platform liveness (database, broker, workers, beat); /health/data the data's freshness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.market.models import Quote
from backend.providers.errors import TransientProviderError
from backend.tasks.liveness import publish
from backend.tasks.models import Heartbeat
from backend.tasks.tasks import dispatch_quotes, heartbeat
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


def checks(response) -> dict[str, dict]:
    return {c["name"]: c for c in response.json()["checks"]}


@pytest.mark.both_brokers  # queue depths and the broker check read RabbitMQ too
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


def test_stale_data_is_reported_by_health_data_not_by_readiness(live_worker, make_asset, client, settings) -> None:
    settings.HEALTH_DATA_CACHE_SECONDS = 0  # a report an earlier test left in the cache would answer otherwise
    make_asset("AAPL")
    make_asset("NEVER", "crypto")  # no quote ever: stale, as when every provider is down for it
    dispatch_quotes.delay("stock").get(timeout=60)
    # The fetch runs after its dispatcher returned: high/0 in session, medium/4 on a closed day (behind the
    # heartbeat). Wait for it whatever the day.
    assert wait_for(lambda: Quote.objects.filter(asset__symbol="AAPL").exists())
    heartbeat.delay().get(timeout=60)

    ready = client.get("/health/ready")
    data = client.get("/health/data", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")  # names: the token

    assert ready.status_code == 200, ready.json()
    assert "freshness" not in checks(ready)
    assert data.status_code == 503
    body = data.json()
    assert body["status"] == "stale" and body["stale"] == 1
    assert [s["symbol"] for s in body["stalest"]] == ["NEVER"]
    assert body["classes"]["stock"]["fresh"] is True


def test_a_queue_without_a_live_worker_is_not_ready_and_no_broadcast_is_sent(live_worker, client) -> None:
    heartbeat.delay().get(timeout=60)
    assert client.get("/health/ready").status_code == 200
    # As if the worker had been killed: its entries are gone (a warm shutdown withdraws them too).
    publish(live_worker.hostname, ["low"], present=False)
    try:
        response = client.get("/health/ready")
    finally:
        publish(live_worker.hostname, ["low"])  # the worker's next tick would; the next test must not wait
    assert response.status_code == 503
    assert checks(response)["workers"]["detail"]["queues_without_worker"] == ["low"]


def test_an_open_breaker_leaves_the_platform_ready(live_worker, make_asset, client, settings) -> None:
    from backend.tasks.sources import circuit_breaker

    heartbeat.delay().get(timeout=60)
    breaker = circuit_breaker()

    def provider_down() -> None:
        raise TransientProviderError("yahoo: HTTP 503", provider="yahoo")

    for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
        with pytest.raises(TransientProviderError):
            breaker.call("yahoo", provider_down)
    try:
        assert breaker.state("yahoo").state == "open"
        assert client.get("/health/ready").status_code == 200
    finally:
        breaker._store.record_success("yahoo")  # close it again for the tests that follow
