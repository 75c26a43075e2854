"""/health/data: counts for anyone, names for the scrape token or staff, one computation per poll storm."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.db import connections
from django.test import Client
from django.utils import timezone

from backend.market.models import Quote
from backend.monitoring import health
from backend.monitoring.health import Check

pytestmark = pytest.mark.usefixtures("empty_cache")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def stale_universe(make_asset) -> None:
    """One fresh stock and one crypto asset whose quote is two days old (stale, named SLOWCOIN)."""
    now = timezone.now()
    Quote.objects.create(asset=make_asset("AAPL"), price=1, as_of=now, source="t", fetched_at=now)
    slow = make_asset("SLOWCOIN", "crypto")
    Quote.objects.create(asset=slow, price=1, as_of=now - timedelta(days=2), source="t", fetched_at=now)


@pytest.mark.django_db
def test_anyone_gets_the_status_and_counts_but_no_names(client: Client, stale_universe) -> None:
    response = client.get("/health/data")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stale" and body["stale"] == 1
    assert body["classes"]["crypto"] == {"fresh": False, "assets": 1, "stale": 1, "without_quote": 0}
    assert "stalest" not in body
    assert b"SLOWCOIN" not in response.content


@pytest.mark.django_db
def test_the_scrape_token_or_a_staff_session_gets_the_names(client: Client, stale_universe, settings) -> None:
    with_token = client.get("/health/data", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").json()
    assert [s["symbol"] for s in with_token["stalest"]] == ["SLOWCOIN"]
    assert "age_quantiles" in with_token["classes"]["crypto"]

    assert b"SLOWCOIN" not in client.get("/health/data", HTTP_AUTHORIZATION="Bearer not-the-token").content
    client.force_login(User.objects.create_user("customer", password=PASSWORD))
    assert b"SLOWCOIN" not in client.get("/health/data").content  # logged in, not staff
    client.force_login(User.objects.create_user("operator", password=PASSWORD, is_staff=True))
    assert b"SLOWCOIN" in client.get("/health/data").content


# Without Redis the cache is a database table (make run's): transactional, so the storm's threads see
# and write the same rows the test does.
@pytest.mark.django_db(transaction=True)
def test_a_poll_storm_costs_one_computation(monkeypatch, settings) -> None:
    settings.HEALTH_DATA_CACHE_SECONDS = 1
    computed: list[float] = []

    def slow_report() -> Check:
        computed.append(time.monotonic())
        time.sleep(0.3)  # a big universe: the storm arrives while this runs
        return Check("freshness", True, {"at": "now", "stale": 0, "classes": {}, "stalest": []})

    monkeypatch.setattr(health, "check_freshness", slow_report)
    answers: list[int] = []

    def poll() -> None:
        try:
            answers.append(Client().get("/health/data").status_code)
        finally:
            # Each thread got its own cache client, and Django's Redis cache has no close(): disconnect
            # its pool here rather than leave the sockets to the garbage collector. The database cache
            # used this thread's own connection: close it.
            redis_client = getattr(caches["default"], "_cache", None)
            for pool in getattr(redis_client, "_pools", {}).values():
                pool.disconnect()
            connections.close_all()

    storm = [threading.Thread(target=poll) for _ in range(20)]
    for thread in storm:
        thread.start()
    for thread in storm:
        thread.join()
    assert answers == [200] * 20
    assert len(computed) == 1

    time.sleep(1.1)  # the report expires: the next poll computes a new one
    assert Client().get("/health/data").status_code == 200
    assert len(computed) == 2


@pytest.mark.django_db  # the database cache (no Redis) is emptied around it
def test_without_a_cache_window_every_poll_computes(monkeypatch, settings) -> None:
    settings.HEALTH_DATA_CACHE_SECONDS = 0
    computed: list[int] = []
    monkeypatch.setattr(health, "check_freshness", lambda: computed.append(1) or Check("freshness", True, {}))
    for _ in range(3):
        Client().get("/health/data")
    assert len(computed) == 3
