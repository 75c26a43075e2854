"""Every message leaves with a priority the broker honours, whoever sent it.

Inside the platform a priority is 0 (most urgent) to 9 (least), as Celery documents it for Redis.
Two gaps close here, on the way out of every process (web, beat, worker):
- A message sent without a priority (a ``.delay()``, an admin run-now, a dead-letter replay) would
  sort FIRST on Redis, whose transport files an unprioritised message under priority 0. It gets the
  lowest priority instead, so only routed work ever jumps the queue.
- RabbitMQ orders the other way round (9 is served first). On an AMQP broker the number on the wire
  is mirrored (``9 - p``) and a worker mirrors it back before its task runs, so a retry, which
  re-sends the priority it was delivered with, keeps its place.
"""

from __future__ import annotations

import logging

from celery.signals import before_task_publish, task_prerun
from django.conf import settings

logger = logging.getLogger(__name__)

MOST_URGENT = 0
LEAST_URGENT = 9
_AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def broker_mirrors_priority(broker_url: str | None = None) -> bool:
    """Whether the broker serves higher numbers first (RabbitMQ), the mirror image of Redis."""
    url = settings.CELERY_BROKER_URL if broker_url is None else broker_url
    return url.split("://", 1)[0].split("+")[0] in _AMQP_SCHEMES


def to_broker(priority: object, *, mirrored: bool) -> int:
    """The broker's number for a platform priority; junk or a missing one becomes the least urgent."""
    try:
        value = int(priority)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = settings.CELERY_TASK_DEFAULT_PRIORITY
    value = min(max(value, MOST_URGENT), LEAST_URGENT)
    return LEAST_URGENT - value if mirrored else value


def from_broker(priority: int, *, mirrored: bool) -> int:
    """The platform priority of a number the broker delivered."""
    return LEAST_URGENT - priority if mirrored else priority


@before_task_publish.connect(dispatch_uid="financehub-priority-on-publish")
def stamp_priority(sender: str | None = None, properties: dict | None = None, **_: object) -> None:
    """Give every outgoing task message a broker priority (the least urgent when none was chosen)."""
    if properties is None:
        return
    properties["priority"] = to_broker(properties.get("priority"), mirrored=broker_mirrors_priority())


@task_prerun.connect(dispatch_uid="financehub-priority-on-run")
def unmirror_delivered_priority(task: object = None, **_: object) -> None:
    """On RabbitMQ, turn the delivered priority back into the platform's before the task can re-send it."""
    if not broker_mirrors_priority():
        return
    request = getattr(task, "request", None)
    info = getattr(request, "delivery_info", None)
    if isinstance(info, dict) and isinstance(info.get("priority"), int):
        info["priority"] = from_broker(info["priority"], mirrored=True)
