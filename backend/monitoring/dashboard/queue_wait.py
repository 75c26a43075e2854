"""How long the oldest message waiting in each queue has waited, read from the broker now.

Queue depth says how much is waiting; this says for how long: the figure that rises first when
workers fall behind. Each waiting message carries the time it was published in a header (every
message: ``financehub_sent_at``, stamped by ``backend.tasks.telemetry``; beat's ticks also
``financehub_beat_sent_at``). On Redis each queue is one list per priority step, newest pushed on
the left, so the oldest message of each list is its last element: one ``LINDEX -1`` per list, all
in one pipeline. Other brokers: not measured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError
from kombu.transport.redis import Channel as RedisChannel
from redis.exceptions import RedisError

from backend.core.celery import app
from backend.tasks.telemetry.celery_signals import SENT_AT_HEADER
from backend.tasks.ticks import BEAT_SENT_HEADER

# Publish-time stamps, most general first.
SENT_HEADERS = (SENT_AT_HEADER, BEAT_SENT_HEADER)


def sent_at(raw: bytes | str) -> float | None:
    """The publish time stamped on one raw Redis message, if it carries one."""
    try:
        headers = json.loads(raw).get("headers") or {}
    except (ValueError, AttributeError):
        return None
    for name in SENT_HEADERS:
        try:
            return float(headers[name])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def oldest_waits(queues: Iterable[str] | None = None, *, now: float | None = None) -> dict[str, float | None]:
    """Seconds the oldest stamped message of each queue has waited; None for an empty (or unstamped) queue.

    Empty when the broker is not Redis or does not answer.
    """
    names = list(settings.TASK_QUEUES if queues is None else queues)
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            if not isinstance(channel, RedisChannel):
                return {}  # no lists to peek at
            keys = [(name, channel._q_for_pri(name, step)) for name in names for step in channel.priority_steps]
            with channel.conn_or_acquire() as client, client.pipeline() as pipe:
                for _, key in keys:
                    pipe.lindex(key, -1)
                heads = pipe.execute()
    except (BrokerError, OSError, RedisError):
        return {}
    now = time.time() if now is None else now
    waits: dict[str, float | None] = dict.fromkeys(names)
    for (name, _), raw in zip(keys, heads, strict=True):
        stamp = sent_at(raw) if raw is not None else None
        if stamp is not None:
            waits[name] = max(waits[name] or 0.0, now - stamp)
    return waits
