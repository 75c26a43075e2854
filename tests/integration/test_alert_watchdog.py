"""A real worker's watchdog notices a never-quoted asset and posts it to the webhook, secret-free."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache import cache

from backend.monitoring.alerts.notify import FIRING_KEY, LOCK_KEY, SENT_PREFIX
from tests.fixtures.worker import start_worker, stop_worker
from tests.unit.monitoring.test_alert_notifier import Receiver

pytestmark = pytest.mark.integration


def test_the_worker_watchdog_posts_a_stale_asset_to_the_webhook(live_worker, make_asset) -> None:
    make_asset("DEAD", "crypto", coingecko_id="dead-coin")
    # Alert state lives in the shared cache: an earlier run's "already sent" must not hold this one back.
    cache.delete_many([FIRING_KEY, LOCK_KEY, f"{SENT_PREFIX}stale_assets"])
    hook = Receiver()
    worker = start_worker({"ALERT_WEBHOOK_URL": hook.url, "ALERT_CHECK_SECONDS": "1", "ALERT_REPEAT_SECONDS": "3600"})
    try:
        deadline = time.monotonic() + 30
        while not any("DEAD" in text for text in hook.texts()) and time.monotonic() < deadline:
            time.sleep(0.3)
        texts = hook.texts()
        assert any("DEAD" in text and "stale" in text for text in texts), (texts, worker.log()[-2000:])
        time.sleep(2.5)  # more rounds: the same alert is not sent again within the repeat period
        assert sum("DEAD" in text for text in hook.texts()) == 1
        assert all("SECRET-hook-path" not in text and settings.METRICS_TOKEN not in text for text in hook.texts())
    finally:
        stop_worker(worker)
        hook.close()
