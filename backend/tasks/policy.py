"""Retry policy shared by every task: exponential backoff with jitter, a floor, a cap and Retry-After.

Two kinds of fault are retried. A task's own transient faults (a provider timing out) are listed in
its ``autoretry_for``. Infrastructure faults (the database, Redis or the broker unreachable for a
moment, SQLite's "database is locked") are retried for EVERY task by ``ReliableTask`` itself: an
outage of a store is not the task's failure, so it must not end in a dead letter while the outage
lasts (``TASK_INFRA_MAX_RETRIES`` bounds how long it is waited out).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import redis.exceptions
from celery import Task
from celery.exceptions import Ignore, Reject
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from .accounting import record_outcome
from .secrets import send_with_redacted_reprs

logger = logging.getLogger(__name__)

# What an outage of a store looks like from inside a task (Django wraps psycopg's and sqlite3's
# errors, "database is locked" included, in OperationalError).
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerOperationalError,
)


# A retry deferred past the cap carries the Unix time it may run at; earlier deliveries hop on.
NOT_BEFORE_HEADER = "financehub_not_before"
HOP_TOLERANCE = 0.5
BROKER_ERRORS = (BrokerOperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _not_before(request: Any) -> float | None:
    value = getattr(request, NOT_BEFORE_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(NOT_BEFORE_HEADER)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# What every run is entered under besides the retries: the dead-letter app's delivery cap installs
# itself here when Django starts (backend/deadletters/apps.py); the task platform names nothing above it.
RunGuard = Callable[[Task], AbstractContextManager[None]]
_run_guard: list[RunGuard] = []


def install_run_guard(guard: RunGuard) -> None:
    """Enter ``guard(task)`` around every run of every ``ReliableTask`` (one guard: a second replaces it)."""
    _run_guard[:] = [guard]


def run_guard(task: Task) -> AbstractContextManager[None]:
    """The installed guard for this run of ``task`` (none installed: a context that does nothing)."""
    return _run_guard[0](task) if _run_guard else nullcontext()


def retry_delay(
    computed: float, *, retry_after: float | None, floor: float, cap: float, retry_after_max: float = 0
) -> float:
    """The wait before a retry: the backoff clamped to [floor, cap], longer when the provider asked to.

    Celery's full jitter draws from [0, computed], so without a floor a retry can fire at once.
    A provider's Retry-After is honoured up to ``max(cap, retry_after_max)``; a wait past ``cap``
    is reached in hops (``ReliableTask``), never by one broker message held longer than ``cap``.
    """
    delay = min(max(floor, computed), cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(cap, retry_after_max)))
    return delay


def infrastructure_backoff(retries: int, *, floor: float, cap: float) -> float:
    """Exponential backoff with full jitter for the ``retries``-th infrastructure retry, in [floor, cap]."""
    ceiling = min(cap, floor * 2 ** min(retries, 16))
    return max(floor, random.uniform(0, ceiling))  # noqa: S311 - jitter, not security


class ReliableTask(Task):
    """Base class for every task: late acks, redelivery on worker loss, bounded retry delays."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        """Run the task under the poison cap, retrying infrastructure faults with backoff.

        reject_on_worker_lost redelivers a message whose worker died under it, forever if the
        task itself kills the worker; the installed guard (``backend.deadletters.poison.delivery_guard``)
        counts deliveries and fails the message into a dead letter, acknowledged, once it passes
        DEADLETTER_MAX_DELIVERIES.
        """
        request = self.request
        not_before = _not_before(request)
        if not_before is not None and not request.called_directly and time.time() < not_before - HOP_TOLERANCE:
            self._hop(not_before)
        try:
            with run_guard(self):
                return super().__call__(*args, **kwargs)
        except INFRASTRUCTURE_ERRORS as exc:
            if request.called_directly or request.is_eager:
                raise
            countdown = infrastructure_backoff(
                request.retries, floor=settings.TASK_RETRY_DELAY_FLOOR, cap=settings.TASK_RETRY_BACKOFF_MAX
            )
            logger.warning(
                "%s[%s] met an infrastructure fault (%s); retrying in %.1f s",
                self.name,
                request.id,
                type(exc).__name__,
                countdown,
            )
            raise self.retry(exc=exc, countdown=countdown, max_retries=settings.TASK_INFRA_MAX_RETRIES) from exc

    def _hop(self, not_before: float) -> None:
        """Send this message on again, at most the retry cap later, and drop this delivery unrun."""
        remaining = not_before - time.time()
        countdown = min(remaining, settings.TASK_RETRY_BACKOFF_MAX)
        try:
            self.signature_from_request(countdown=countdown).apply_async()
        except BROKER_ERRORS as exc:
            raise Reject(exc, requeue=True) from None
        logger.info("%s[%s] waits %.0f s more before its retry", self.name, self.request.id, remaining)
        raise Ignore()

    def apply_async(self, args=None, kwargs=None, **options):
        """Send the task with redacted argument reprs: they travel in task events (Flower shows them)."""
        with send_with_redacted_reprs(args, kwargs, options):
            return super().apply_async(args, kwargs, **options)

    def beat_schedule(self) -> str | None:
        """The beat schedule that sent this run (django-celery-beat's header), if beat sent it."""
        return getattr(self.request, "periodic_task_name", None)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Count a finally failed batch (or periodic task) against its run, so its completeness stays true.

        A batch's items are the task's CURRENT list argument: after a subset retry, only that subset.
        With the database down the count cannot be written; the run's deadline then closes it as
        incomplete with these items among the unaccounted ones.
        """
        kwargs = kwargs or {}
        try:
            if kwargs.get("run_id") is not None:
                # A batch task's batch is its list argument (symbols or asset ids).
                items = next((arg for arg in args or () if isinstance(arg, list)), [])
                record_outcome(kwargs["run_id"], kwargs.get("batch"), failed=items)
            elif getattr(self.request, "dispatch_run_id", None) is not None:
                record_outcome(self.request.dispatch_run_id, 0, failed=[self.name])
        except DatabaseError as error:
            logger.warning("could not count the failure of %s[%s] against its run: %s", self.name, task_id, error)
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def retry(
        self,
        args=None,
        kwargs=None,
        exc=None,
        throw=True,
        eta=None,
        countdown=None,
        max_retries=None,
        **options,
    ):
        """Apply the floor, the cap and the provider's Retry-After to every retry delay.

        A retry that cannot be sent (the broker is unreachable) puts the message back on its queue
        instead of dropping it, as Celery would.
        """
        if eta is not None and countdown is None:
            countdown, eta = max(0.0, eta.timestamp() - time.time()), None
        if countdown is not None:
            cap = settings.TASK_RETRY_BACKOFF_MAX
            wait = retry_delay(
                countdown,
                retry_after=getattr(exc, "retry_after", None),
                floor=settings.TASK_RETRY_DELAY_FLOOR,
                cap=cap,
                retry_after_max=settings.TASK_RETRY_AFTER_MAX,
            )
            countdown = min(wait, cap)
            if wait > cap:
                # The message may wait in a worker only up to the cap; it hops on until the time is up.
                headers = {**(self.request.headers or {}), **(options.pop("headers", None) or {})}
                options["headers"] = {**headers, NOT_BEFORE_HEADER: time.time() + wait}
        try:
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        except Reject as rejected:
            if rejected.requeue:
                raise
            logger.warning(
                "retry of %s[%s] could not be sent; the message goes back to its queue", self.name, self.request.id
            )
            time.sleep(settings.TASK_RETRY_DELAY_FLOOR)  # no hot loop while the broker is away
            raise Reject(rejected.reason, requeue=True) from None
