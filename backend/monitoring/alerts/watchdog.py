"""Run the alert check in every worker, one worker at a time, on a thread of the worker's main process.

Not a beat task: a silent beat is one of the conditions, and a task beat no longer sends could not
report it. The consumer bootstep starts one daemon thread per worker; each round takes a cache lock
so one worker per ``ALERT_CHECK_SECONDS`` checks.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from django.conf import settings
from django.db import DatabaseError, connections
from redis.exceptions import RedisError

from .notify import check_once_per_interval

logger = logging.getLogger(__name__)


class AlertWatchdog(bootsteps.StartStopStep):
    """Consumer bootstep owning the watchdog thread."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, consumer: Any) -> None:
        """Start checking in the background."""
        if self.thread is not None and self.thread.is_alive():
            return
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="financehub-alerts", daemon=True)
        self.thread.start()

    def stop(self, consumer: Any) -> None:
        """Stop after the current round."""
        self.stopping.set()

    def run(self) -> None:
        """Check, then wait an interval, until stopped."""
        while not self.stopping.wait(timeout=settings.ALERT_CHECK_SECONDS):
            try:
                outcome = check_once_per_interval()
            except (DatabaseError, RedisError, OSError) as exc:
                # The stores are away: that is what the health checks report; try again next round.
                logger.warning("alert check skipped: %s", type(exc).__name__)
            else:
                if outcome and outcome.sent:
                    logger.info("alerts sent: %s", ", ".join(a.key for a in outcome.sent))
            finally:
                connections.close_all()  # this thread's own connections only
