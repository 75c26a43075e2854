"""Where a periodic task's run came from: a beat tick (and when beat sent it), an operator, or code.

Slots must come from the time beat sent the tick, not from the worker's clock: a tick delayed in
a backed-up queue would otherwise take the next tick's slot (and that tick would be skipped), and
two ticks straddling a slot boundary would make two runs. Celery's beat marks what it sends with
the ``celery_beat_task`` header but records no time, so beat's publisher stamps one here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import signals

# Header beat's publisher adds: the Unix time beat sent the tick.
BEAT_SENT_HEADER = "financehub_beat_sent_at"
# Headers Celery's beat and django-celery-beat set (beat and admin's "Run selected tasks" both
# send the schedule's name; only beat sends the beat flag).
BEAT_FLAG_HEADER = "celery_beat_task"
SCHEDULE_HEADER = "periodic_task_name"


@signals.before_task_publish.connect(dispatch_uid="financehub.ticks.stamp_beat_ticks")
def stamp_beat_ticks(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """In beat: stamp each tick with the time it is sent (kept as is when a retry re-sends it)."""
    if headers is not None and headers.get(BEAT_FLAG_HEADER) and BEAT_SENT_HEADER not in headers:
        headers[BEAT_SENT_HEADER] = time.time()


@dataclass(frozen=True)
class Origin:
    """Who asked for this run: the schedule's name (if any) and, for a beat tick, when beat sent it."""

    schedule: str | None
    tick: datetime | None

    @property
    def from_beat(self) -> bool:
        """Beat sent it (a doubled tick of the same slot must not run twice)."""
        return self.tick is not None


def _header(request: Any, name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def origin_of(request: Any, now: datetime | None = None) -> Origin:
    """The origin of the task run ``request`` describes.

    A beat tick without the stamp (sent by a beat of an older release) falls back to the worker's
    clock, as before; a run with the schedule's name but no beat flag is an operator's run-now.
    """
    schedule = _header(request, SCHEDULE_HEADER)
    if not _header(request, BEAT_FLAG_HEADER):
        return Origin(schedule=schedule, tick=None)
    stamp = _header(request, BEAT_SENT_HEADER)
    try:
        tick = datetime.fromtimestamp(float(stamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        tick = now or datetime.now(tz=UTC)
    return Origin(schedule=schedule, tick=tick)
