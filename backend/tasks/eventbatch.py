"""Task events published in batches: one Redis PUBLISH per interval instead of one per event loop turn.

A worker sends task-received, task-started and task-succeeded (or -failed, -retried) for every task:
Flower and the metrics need them. Celery buffers them and flushes the buffer on the event loop's next
turn, so under load nearly every event became its own PUBLISH, 40 % of the worker's main process in a
no-op drain (docs/BENCHMARKS.md). This consumer flushes at most every ``EVENT_FLUSH_INTERVAL``
seconds instead (Celery still flushes at once when 24 events are buffered); receivers (Flower,
``celery events``) take the batch as one ``task.multi`` message. Buffered events are flushed before
the consumer stops, so a shutdown loses none. ``EVENT_FLUSH_INTERVAL = 0`` restores Celery's behaviour.
"""

from __future__ import annotations

from celery.worker.consumer import Consumer
from django.conf import settings


class EventBatchingConsumer(Consumer):
    """Celery's consumer with task events flushed on a short timer (see the module docstring)."""

    _flush_pending = False

    def on_send_event_buffered(self) -> None:
        """Schedule one flush for whatever the next ``EVENT_FLUSH_INTERVAL`` buffers."""
        interval = float(settings.EVENT_FLUSH_INTERVAL)
        if not self.hub or interval <= 0:
            super().on_send_event_buffered()
            return
        if not self._flush_pending:
            self._flush_pending = True
            self.hub.call_later(interval, self._flush_buffered)

    def _flush_buffered(self) -> None:
        self._flush_pending = False
        self._flush_events()

    def stop(self) -> None:
        """Flush buffered events, then stop as Celery does."""
        self._flush_events()
        super().stop()

    def shutdown(self) -> None:
        """Flush buffered events, then shut down as Celery does."""
        self._flush_events()
        super().shutdown()
