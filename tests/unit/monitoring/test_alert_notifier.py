"""The built-in notifier: conditions found, sent once per repeat period, resolved once, no secret in a message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from backend.deadletters.models import DeadLetter
from backend.market.models import Quote
from backend.monitoring.alerts import check_and_notify
from backend.monitoring.alerts.conditions import evaluate
from backend.monitoring.alerts.queue_wait import p95
from backend.tasks.liveness import publish
from backend.tasks.models import Heartbeat

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook on loopback that records every JSON body it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/SECRET-hook-path"

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    hook = Receiver()
    settings.ALERT_WEBHOOK_URL = hook.url
    yield hook
    hook.close()


@pytest.fixture(autouse=True)
def clean_alert_state(settings) -> Iterator[None]:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def healthy(make_asset) -> None:
    """Beat alive, a worker on every queue, one fresh asset: nothing fires."""
    now = timezone.now()
    Heartbeat.objects.create(component="beat", last_seen=now)
    publish("w1@host", ["high", "medium", "low"])
    btc = make_asset("BTC", "crypto")
    Quote.objects.create(asset=btc, price=1, as_of=now, source="t", fetched_at=now)


def test_a_healthy_platform_fires_nothing(healthy, receiver) -> None:
    assert evaluate(timezone.now()) == []
    assert check_and_notify().sent == ()
    assert receiver.bodies == []


def test_each_condition_is_found(healthy, make_asset) -> None:
    Heartbeat.objects.filter(component="beat").update(last_seen=timezone.now() - timedelta(minutes=10))
    publish("w1@host", ["low"], present=False)
    make_asset("DEAD", "crypto")  # never quoted
    evaluate(timezone.now())  # the dead-letter count's baseline
    now = timezone.now()
    DeadLetter.objects.create(
        task_id="t1", task_name="quotes.fetch", exception_class="backend.providers.errors.AllProvidersFailedError",
        first_failure_at=now, last_failure_at=now,
    )  # fmt: skip

    keys = {a.key: a for a in evaluate(timezone.now())}

    assert {"beat_silent", "no_worker:low", "stale_assets", "dead_letters_rising"} <= set(keys)
    assert "DEAD" in keys["stale_assets"].summary and "crypto 1/2" in keys["stale_assets"].summary
    assert "quotes.fetch AllProvidersFailedError x1" in keys["dead_letters_rising"].summary
    assert keys["beat_silent"].severity == "critical"


def test_an_alert_is_sent_once_per_repeat_period_then_resolved_once(healthy, receiver, make_asset, settings) -> None:
    settings.ALERT_REPEAT_SECONDS = 3600
    dead = make_asset("DEAD", "crypto")

    first = check_and_notify()
    second = check_and_notify()

    assert [a.key for a in first.sent] == ["stale_assets"] and second.sent == ()
    assert len(receiver.bodies) == 1 and "DEAD" in receiver.texts()[0]
    now = timezone.now()
    Quote.objects.create(asset=dead, price=1, as_of=now, source="t", fetched_at=now)
    third = check_and_notify()
    assert third.resolved == ("stale_assets",)
    assert len(receiver.bodies) == 2 and "[resolved]" in receiver.texts()[1]
    assert check_and_notify().resolved == () and len(receiver.bodies) == 2


def test_a_failed_delivery_is_tried_again_at_the_next_check(healthy, make_asset, settings) -> None:
    hook = Receiver(status=500)
    settings.ALERT_WEBHOOK_URL = hook.url
    try:
        make_asset("DEAD", "crypto")
        assert check_and_notify().delivered is False
        hook.status = 200
        assert [a.key for a in check_and_notify().sent] == ["stale_assets"]
        assert len(hook.bodies) == 2
    finally:
        hook.close()


def test_admins_get_an_email_without_any_secret(healthy, receiver, make_asset, settings) -> None:
    settings.ALERT_EMAIL = True
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.COINGECKO_API_KEY = "cg-secret-key-123456"
    make_asset("DEAD", "crypto")
    DeadLetter.objects.create(
        task_id="t1", task_name="quotes.fetch", exception_class="x.Boom", exception_message="cg-secret-key-123456",
        first_failure_at=timezone.now(), last_failure_at=timezone.now(),
    )  # fmt: skip

    check_and_notify()

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"]
    assert "stale" in mail.outbox[0].body
    everything = mail.outbox[0].subject + mail.outbox[0].body + json.dumps(receiver.bodies)
    for secret in ("cg-secret-key-123456", "SECRET-hook-path", settings.METRICS_TOKEN):
        assert secret not in everything


def test_queue_wait_p95_is_the_upper_bound_of_its_bucket() -> None:
    assert p95({1.0: 90, 5.0: 94, 30.0: 99, float("inf"): 100}) == 30.0
    assert p95({1.0: 100, float("inf"): 100}) == 1.0
    assert p95({1.0: 0, float("inf"): 0}) is None
